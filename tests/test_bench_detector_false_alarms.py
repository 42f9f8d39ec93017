"""bench.detector_false_alarms: the accuracy bench's false alarms on a set, by what they sit next to."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from bench.detector_accuracy import ROW_SETS, SampledFrame, simulator_scores
from bench.detector_false_alarms import PLACES, false_alarms, place_of
from daemon.models import Box
from daemon.sim.clip import ClipSpec, build_clip
from daemon.sim.realism import Extras, Realism, lookalike_insert

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "ball.onnx"


def test_the_places_split_the_false_alarms_of_the_accuracy_bench() -> None:
    alarms = false_alarms(MODEL, 400, 8, "harder looks")
    first_seed, look = ROW_SETS["harder looks"]
    whole = simulator_scores(MODEL, 400, 8, first_seed, look)["all"]
    assert (alarms.score.truths, alarms.score.hits) == (whole.truths, whole.hits)
    assert alarms.score.false_alarms == whole.false_alarms > 0
    assert sum(len(v) for v in alarms.confidences.values()) == whole.false_alarms == alarms.clips.total()
    assert all(0 < c <= 1 for v in alarms.confidences.values() for c in v)


def box_at(x: float, y: float, size: float = 14.0) -> Box:
    return Box(x - size / 2, y - size / 2, x + size / 2, y + size / 2)


def test_a_false_alarm_is_placed_by_what_is_drawn_next_to_it() -> None:
    script, renderer, timeline = build_clip(ClipSpec(seed=3, putts=2, realism=Realism.every(1.0)))
    putter = next(o for o in script.occluders if o.kind == "putter")
    t = (putter.t0 + putter.t1) / 2
    occluders = timeline.occluders(t)
    (x, y), _ = lookalike_insert(putter.at(t) or putter.start, putter.size)
    insert = script.scene.to_image(x, y)
    balls = timeline.balls(t)
    ball = balls[0].box.center
    sampled = SampledFrame(3, 0, renderer.render(t, balls, occluders), script.scene, renderer.extras, balls,
                           occluders)  # fmt: skip
    assert renderer.extras.lookalike
    assert renderer.extras.glare
    assert place_of(box_at(*insert), sampled) == "on the look-alike insert"
    without_insert = replace(sampled, extras=replace(renderer.extras, lookalike=False))
    assert place_of(box_at(*insert), without_insert) != "on the look-alike insert"
    assert place_of(box_at(ball.x, ball.y + 2 * balls[0].box.width), sampled) == "beside a ball"
    far = box_at(5.0, 5.0)
    assert place_of(far, sampled) == "by a putter or foot"
    alone = replace(sampled, occluders=[], balls=[])
    assert place_of(far, alone) == "elsewhere, glare on"
    assert place_of(far, replace(alone, extras=Extras(seed=3))) == "elsewhere"


def test_the_bench_prints_a_row_per_place(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.detector_false_alarms", "--frames", "40", "--seeds", "4"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line[:28].strip() for line in lines[2 : 3 + len(PLACES)]] == [*PLACES, "all"]
    assert lines[-1].startswith(f"{MODEL}: precision ")
