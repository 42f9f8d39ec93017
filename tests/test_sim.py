"""The simulator: deterministic, every outcome on demand and consistent with its label, truthful labels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.errors import CameraError
from daemon.models import Box, Point
from daemon.sim.clip import ClipSpec, SimulatedCamera, build_clip
from daemon.sim.dataset import DatasetImage, SpeedNotReachedError, camera_for, render_example, write_dataset
from daemon.sim.realism import Realism
from daemon.sim.render import Renderer
from daemon.sim.rig import make_scene
from daemon.sim.script import ClipScript, Occluder, PuttRequest, PuttTruth
from daemon.sim.truth import BallView
from daemon.vision.calibration import Region, load_calibration, parse_calibration

ON_DEMAND = (
    PuttRequest("MAKE", "TOP"), PuttRequest("MAKE", "RIGHT"), PuttRequest("MAKE", "LOW"),
    PuttRequest("MAKE", "LEFT"), PuttRequest("CATCH"), PuttRequest("RETURN"), PuttRequest("TIMEOUT"),
    PuttRequest("QUICK"),
)  # fmt: skip
RAMP = (Region.RAMP, Region.RAMP_LEFT, Region.RAMP_CENTER, Region.RAMP_RIGHT)


def centres(script: ClipScript, putt: PuttTruth) -> list[tuple[float, Point]]:
    """The putt's ball centre in the image at every frame from the strike until it settles."""
    scene = script.scene
    ball = script.balls[putt.ball_id - 1]
    out = []
    for f in range(putt.first_frame, putt.last_frame + 1):
        state = ball.state(f / scene.fps)
        if state is not None and state.visible:
            out.append((f / scene.fps, Point(*scene.to_image(*state.position))))
    return out


def first(script: ClipScript, path: list[tuple[float, Point]], regions: tuple[Region, ...]) -> float | None:
    cal = script.scene.calibration
    return next((t for t, p in path if any(cal.contains(r, p) for r in regions)), None)


def test_same_seed_same_frames_and_truth() -> None:
    spec = ClipSpec(seed=11, putts=2)
    one, two = SimulatedCamera(spec, realtime=False), SimulatedCamera(spec, realtime=False)
    assert one.truth.putts == two.truth.putts
    for _ in range(150):
        a, b = one.read(), two.read()
        assert a is not None
        assert b is not None
        assert a.index == b.index
        assert np.array_equal(a.image, b.image)
    other = SimulatedCamera(ClipSpec(seed=12, putts=2), realtime=False).read()
    assert other is not None
    assert a is not None
    assert not np.array_equal(other.image, a.image)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 8, 39, 105])
def test_every_outcome_on_demand_with_a_consistent_trajectory(seed: int) -> None:
    script, _, _ = build_clip(ClipSpec(seed=seed, requests=ON_DEMAND, default_rig=seed == 0))
    cal = script.scene.calibration
    by_kind = {p.kind: p for p in script.putts if p.kind != "MAKE"}
    makes = [p for p in script.putts if p.kind == "MAKE"]
    assert [p.detail.split(" - ")[1].split(": ")[1] for p in makes[:4]] == ["TOP", "RIGHT", "LOW", "LEFT"]
    for putt in makes:
        path = centres(script, putt)
        in_hole = first(script, path, (Region.HOLE_TOP, Region.HOLE_RIGHT, Region.HOLE_LOW, Region.HOLE_LEFT))
        back = first(script, path, (Region.RETURN_TRACK,))
        assert in_hole is not None
        assert back is not None
        assert in_hole < back
        assert first(script, path, (Region.CATCH,)) is None
        assert putt.detail.startswith("MAKE - HOLE: ")
    catch = centres(script, by_kind["CATCH"])
    touched, back = first(script, catch, (Region.CATCH,)), first(script, catch, (Region.RETURN_TRACK,))
    assert touched is not None
    assert back is not None
    assert touched < back
    assert by_kind["CATCH"].detail.startswith("MISS - CATCH: ")
    returned = centres(script, by_kind["RETURN"])
    on_ramp = first(script, returned, RAMP)
    assert on_ramp is not None
    assert any(t > on_ramp and cal.contains(Region.MAT, p) for t, p in returned)
    assert first(script, returned, (Region.CATCH, Region.RETURN_TRACK, Region.HOLE)) is None
    assert by_kind["RETURN"].detail.startswith("MISS - RETURN: ")
    timeout = centres(script, by_kind["TIMEOUT"])
    assert first(script, timeout, (Region.RETURN_TRACK, Region.CATCH, Region.HOLE)) is None
    assert by_kind["TIMEOUT"].detail.startswith("MISS - TIMEOUT: ")
    quick = by_kind["QUICK"]
    assert quick.detail == "MISS - QUICK PUTT"
    follower = script.putts[quick.index]  # the putt that started before the quick ball came back
    quick_ball = script.balls[quick.ball_id - 1]
    state = quick_ball.state(follower.start_time)
    assert state is not None
    assert any(cal.contains(r, Point(*script.scene.to_image(*state.position))) for r in RAMP)


def test_sessions_and_idle_gaps_in_the_truth() -> None:
    script, _, _ = build_clip(ClipSpec(seed=7, sessions=3, putts=3, idle_gap=(130.0, 140.0)))
    assert [s.putts for s in script.sessions] == [3, 3, 3] or len(script.putts) > 9  # a quick putt adds one
    for earlier, later in zip(script.sessions, script.sessions[1:], strict=False):
        assert later.start_time - earlier.end_time > 120.0
    for putt in script.putts:
        assert putt.start_time >= putt.strike_time
        assert putt.first_frame <= putt.last_frame


@pytest.mark.parametrize("seed", range(8))
def test_calibration_validates_and_round_trips(seed: int, tmp_path: Path) -> None:
    scene = make_scene(seed)
    again = parse_calibration(json.loads(json.dumps(scene.calibration.to_json())))
    assert again.polygons == scene.calibration.polygons
    scene.calibration.save(tmp_path / "cal.json")
    assert load_calibration(tmp_path / "cal.json").polygons == scene.calibration.polygons


def test_default_calibration_file_is_the_default_rig() -> None:
    shipped = load_calibration(Path(__file__).resolve().parents[1] / "config" / "calibration.json")
    assert shipped.polygons == make_scene(0, vary_pose=False).calibration.polygons
    mat, ramp = shipped.polygons[Region.MAT], shipped.polygons[Region.RAMP]
    assert max(x for x, _ in mat) < min(x for x, _ in ramp)  # putts travel left to right


def fitted_circle_box(image: np.ndarray, label: Box) -> Box | None:
    """Fit a circle to the bright blob inside (a margin around) the labelled box."""
    m = 4
    x1, y1 = max(int(label.x1) - m, 0), max(int(label.y1) - m, 0)
    x2, y2 = min(int(label.x2) + m + 1, image.shape[1]), min(int(label.y2) + m + 1, image.shape[0])
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    _, mask = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    bx, by, bw, bh = cv2.boundingRect(largest)
    if bx == 0 or by == 0 or bx + bw == mask.shape[1] or by + bh == mask.shape[0]:
        return None  # the blob runs into its surroundings (the cup, a speck): no clean circle to fit
    blob = np.zeros_like(mask)
    cv2.drawContours(blob, [largest], -1, 255, -1)
    # A circle with the blob's area and centroid: robust to the anti-aliased rim, unlike an enclosing circle.
    moments = cv2.moments(blob, binaryImage=True)
    r = float(np.sqrt(moments["m00"] / np.pi))
    cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    return Box(x1 + cx - r, y1 + cy - r, x1 + cx + r, y1 + cy + r)


def test_dataset_labels_match_the_drawn_balls() -> None:
    checked = 0
    for seed in range(60):
        image, info = render_example(seed)
        if info.occluded or info.negative:
            continue
        for box, moving in zip(info.balls, info.moving, strict=True):
            inside = box.x1 > 6 and box.y1 > 6 and box.x2 < image.shape[1] - 6 and box.y2 < image.shape[0] - 6
            alone = all(other is box or box.iou(other) == 0 for other in info.balls)
            if moving or not inside or not alone:
                continue
            fitted = fitted_circle_box(image, box)
            if fitted is None:
                continue
            assert box.iou(fitted) > 0.9, (seed, box, fitted)
            checked += 1
    assert checked >= 30


def test_dataset_folder_layout(tmp_path: Path) -> None:
    written = write_dataset(tmp_path, 12, seed=3, progress=False)
    assert len(list((tmp_path / "images").glob("*.jpg"))) == 12
    for info in written:
        lines = (tmp_path / "labels" / f"{info.name}.txt").read_text().splitlines()
        assert len(lines) == len(info.balls)
        for line in lines:
            cls, *xywh = line.split()
            assert cls == "0"
            assert all(0 <= float(v) <= 1 for v in xywh)
    assert "0: ball" in (tmp_path / "data.yaml").read_text()
    assert len((tmp_path / "meta.jsonl").read_text().splitlines()) == 12


def test_clip_frame_dataset_labels_match_the_drawn_balls(tmp_path: Path) -> None:
    written = write_dataset(tmp_path, 30, seed=5, crop_share=0.5, from_clips=True, progress=False)
    assert len(written) == 30
    assert {info.seed for info in written} == {5000, 5001, 5002}  # 12 frames a clip
    assert sum(any(info.moving) for info in written) >= 12  # rolling balls favoured: 6 of 30 if not
    checked, cropped = 0, 0
    for info in written:
        image = cv2.imread(str(tmp_path / "images" / f"{info.name}.jpg"))
        assert image is not None
        cropped += image.shape != (480, 640, 3)
        lines = (tmp_path / "labels" / f"{info.name}.txt").read_text().splitlines()
        assert len(lines) == len(info.balls)
        for box, moving in zip(info.balls, info.moving, strict=True):
            inside = box.x1 > 6 and box.y1 > 6 and box.x2 < image.shape[1] - 6 and box.y2 < image.shape[0] - 6
            alone = all(other is box or box.iou(other) == 0 for other in info.balls)
            fitted = fitted_circle_box(image, box) if inside and alone and not moving else None
            if fitted is not None:
                assert box.iou(fitted) > 0.85, (info.name, box, fitted)
                checked += 1
    assert checked >= 10
    assert 5 <= cropped <= 25


def fastest_ball(name: str) -> float:
    """Image pixels a second of the fastest ball in dataset frame NAME (clip_SEED_FRAME), one frame on."""
    _, seed, frame = name.split("_")
    script, _, _ = build_clip(ClipSpec(seed=int(seed), putts=6, camera=camera_for(int(seed), 0.0)))
    fps, speeds = script.scene.fps, [0.0]
    for ball in script.balls:
        now, later = ball.state(int(frame) / fps), ball.state((int(frame) + 1) / fps)
        if now is not None and later is not None:
            (x0, y0), (x1, y1) = script.scene.to_image(*now.position), script.scene.to_image(*later.position)
            speeds.append(fps * float(np.hypot(x1 - x0, y1 - y0)))
    return max(speeds)


def test_clip_frames_with_a_speed_floor_each_show_a_ball_that_fast(tmp_path: Path) -> None:
    fast = write_dataset(tmp_path / "fast", 24, seed=5, from_clips=True, min_speed=200, progress=False)
    assert len(fast) == 24
    assert min(fastest_ball(info.name) for info in fast) >= 200
    anyhow = write_dataset(tmp_path / "any", 24, seed=5, from_clips=True, progress=False)
    assert sum(fastest_ball(info.name) < 200 for info in anyhow) >= 12  # the floor is what keeps them out
    with pytest.raises(SpeedNotReachedError, match="no frame of 20 clips in a row"):
        write_dataset(tmp_path / "never", 1, seed=5, from_clips=True, min_speed=1000, progress=False)
    with pytest.raises(ValueError, match="min_speed needs from_clips"):
        write_dataset(tmp_path / "scenes", 1, seed=5, min_speed=200, progress=False)


def frame_scene(name: str) -> tuple[list[BallView], list[str]]:
    """The balls of dataset frame NAME (clip_SEED_FRAME), and the kinds of occluder in the picture."""
    _, seed, frame = name.split("_")
    script, _, timeline = build_clip(ClipSpec(seed=int(seed), putts=6, camera=camera_for(int(seed), 0.0)))
    t = int(frame) / script.scene.fps
    return timeline.balls(t), [occluder.kind for occluder, _ in timeline.occluders(t)]


def test_putter_frames_each_show_the_putter_beside_a_ball_it_does_not_hide(tmp_path: Path) -> None:
    made = write_dataset(tmp_path / "putter", 24, seed=5, from_clips=True, putter_frames=True, progress=False)
    assert len(made) == 24
    scenes = [frame_scene(info.name) for info in made]
    assert all("putter" in kinds for _, kinds in scenes)
    assert not any(ball.occluded for balls, _ in scenes for ball in balls)
    # At address: the ball waits for the stroke, a frame the still-frame share mostly drops.
    assert sum(all(ball.state.speed == 0 for ball in balls) for balls, _ in scenes) >= 12
    anyhow = write_dataset(tmp_path / "any", 24, seed=5, from_clips=True, progress=False)
    assert sum("putter" in frame_scene(info.name)[1] for info in anyhow) <= 6
    with pytest.raises(ValueError, match="putter_frames needs from_clips"):
        write_dataset(tmp_path / "scenes", 1, seed=5, putter_frames=True, progress=False)


def insert_discs(folder: Path, made: list[DatasetImage]) -> list[np.ndarray]:
    """The pixels in the middle third of each class-1 label of a dataset written with lookalike_class."""
    discs = []
    for info in made:
        image = np.asarray(cv2.imread(str(folder / "images" / f"{info.name}.jpg")))
        h, w = image.shape[:2]
        for line in (folder / "labels" / f"{info.name}.txt").read_text().splitlines():
            label, x, y, bw, _ = line.split()
            if label == "1":
                cx, cy, r = float(x) * w, float(y) * h, float(bw) * w / 2
                third = (
                    slice(round(cy - r / 3), round(cy + r / 3) + 1),
                    slice(round(cx - r / 3), round(cx + r / 3) + 1),
                )
                discs.append(image[third].reshape(-1, 3))
    return discs


@pytest.mark.parametrize("from_clips", [False, True])
def test_the_lookalike_class_labels_each_insert_where_it_is_drawn(tmp_path: Path, from_clips: bool) -> None:
    def written(folder: str, lookalike_class: bool) -> list[DatasetImage]:
        return write_dataset(
            tmp_path / folder, 24, 41, crop_share=0.85 if from_clips else 0.0,
            realism=Realism(lookalike=1.0), from_clips=from_clips, putter_frames=from_clips,
            lookalike_class=lookalike_class, progress=False,
        )  # fmt: skip

    made = written("with", lookalike_class=True)
    written("without", lookalike_class=False)
    discs = insert_discs(tmp_path / "with", made)
    assert len(discs) == sum(len(info.lookalikes) for info in made) >= 15
    # Each label sits on a flat bright disc: the insert, lit like the scene, with no ball's shading.
    assert all(disc.mean() > 150 and disc.std(axis=0).max() < 10 for disc in discs)
    assert "  1: lookalike" in (tmp_path / "with" / "data.yaml").read_text()
    for info in made:
        labels = (tmp_path / "with" / "labels" / f"{info.name}.txt").read_text().splitlines()
        ball_only = (tmp_path / "without" / "labels" / f"{info.name}.txt").read_text().splitlines()
        assert [line for line in labels if line.startswith("0 ")] == ball_only
        image = (tmp_path / "with" / "images" / f"{info.name}.jpg").read_bytes()
        assert image == (tmp_path / "without" / "images" / f"{info.name}.jpg").read_bytes()
    assert "  1: lookalike" not in (tmp_path / "without" / "data.yaml").read_text()


def test_an_unreachable_speed_floor_leaves_no_new_folder_behind(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    for out, kept in ((tmp_path / "new" / "set", False), (mine, True)):
        command = [sys.executable, "-m", "daemon", "simulate", "--dataset", str(out), "--from-clips",
                   "--images", "2", "--min-speed", "900"]  # fmt: skip
        done = subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 2, done.stderr
        assert out.exists() == kept
    assert sorted(p.name for p in mine.iterdir()) == ["images", "labels", "notes"]  # a folder it did not make


def test_simulate_refuses_options_its_target_would_ignore(tmp_path: Path, cli_env: dict[str, str]) -> None:
    simulate = [sys.executable, "-m", "daemon", "simulate"]
    for args, message in (
        (["--out", str(tmp_path / "clip"), "--lookalike-class", "--images", "9"],
         "--images, --lookalike-class: not used with --out"),
        (["--dataset", str(tmp_path / "set"), "--putts", "3", "--camera", "oblique"],
         "--putts, --camera: not used with --dataset"),
    ):  # fmt: skip
        command = [*simulate, *args]
        done = subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2
        assert done.stderr.strip() == f"putt-daemon simulate: {message}"
    assert list(tmp_path.iterdir()) == []


def test_simulate_command_writes_a_readable_clip(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "clip"
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "simulate", "--out", str(out), "--putts", "1", "--seed", "2"],
        capture_output=True, text=True, env=cli_env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    truth = json.loads((out / "truth.json").read_text())
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == truth["frames"]
    ok, frame = capture.read()
    capture.release()
    assert ok
    assert frame.shape == (480, 640, 3)
    assert len(truth["frame_boxes"]) == truth["frames"]
    assert load_calibration(out / "calibration.json").frame_size == (640, 480)


class FakeClock:
    """Wall time that only moves when the camera sleeps."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_live_source_paces_frames_to_real_time_and_skips_dropped_ones() -> None:
    clock = FakeClock()
    camera = SimulatedCamera(ClipSpec(seed=5, putts=1), clock=clock, sleep=clock.sleep)
    frames = []
    while (frame := camera.read()) is not None and frame.index < 300:
        frames.append(frame)
    assert all(f.timestamp == pytest.approx(1_700_000_000.0 + f.index / 30.0) for f in frames)
    assert clock.now == pytest.approx(frames[-1].timestamp)
    assert not {f.index for f in frames} & camera.truth.dropped
    assert len(frames) == 300 - len([d for d in camera.truth.dropped if d < 300])


def test_bad_sim_url_is_a_clear_camera_error() -> None:
    with pytest.raises(CameraError, match="seed must be a whole number"):
        SimulatedCamera.from_url("sim://?seed=abc", 640, 480, 30.0)


@pytest.mark.parametrize("kind", ["putter", "foot"])
def test_hidden_share_is_what_the_renderer_covers(kind: str) -> None:
    # The occluded flag decides which balls the detector is scored on; it must follow the drawn shapes.
    checked = 0
    for seed in range(4):  # four rig turns and scales
        scene = make_scene(seed, 640, 480)
        renderer = Renderer(scene, seed)
        d = scene.ball_radius_units * 2
        occluder = Occluder(
            kind, 0.0, 1.0, (200.0, 150.0), (200.0, 150.0), (1.6 if kind == "foot" else 1.0) * d
        )
        drawn = np.zeros((480, 640, 3), np.uint8)
        renderer.draw_occluder(drawn, occluder, occluder.start)
        covered = drawn.max(axis=2) > 0
        for dx in np.linspace(-3.5, 3.5, 15) * d:
            for dy in np.linspace(-2, 2, 9) * d:
                ball = (200.0 + dx, 150.0 + dy)
                x, y = scene.to_image(*ball)
                disc = np.zeros((480, 640), np.uint8)
                cv2.circle(disc, (round(x * 16), round(y * 16)), round(scene.ball_diameter / 2 * 16), 1, -1,
                           cv2.LINE_8, 4)  # fmt: skip
                inside = disc > 0
                seen = covered[inside].mean()
                assert occluder.hidden_share(occluder.start, ball, d / 2) == pytest.approx(seen, abs=0.2)
                checked += seen > 0.3
    assert checked >= 20
