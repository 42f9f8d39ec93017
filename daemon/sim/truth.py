"""Ground truth of a simulated clip: expected putt strings by the Proof of Putt rules, boxes per frame.

`plan_clip` scripts a clip from a seed; `label_putts` names each putt from the ball centre at frame times
and the scene's calibration, as the rules read a camera; `Timeline` says which balls are where at a time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from daemon.models import Box, Point
from daemon.sim.motion import BallPath, BallState
from daemon.sim.rig import Scene
from daemon.sim.script import KIND_WEIGHTS, ClipScript, Occluder, PuttRequest, PuttTruth, ScriptWriter
from daemon.vision.calibration import Region

_RAMP = (Region.RAMP_LEFT, Region.RAMP_CENTER, Region.RAMP_RIGHT, Region.RAMP)
_LANES = ("LEFT", "CENTER", "RIGHT")
HIDDEN_SHARE = 0.2  # a ball with more of it behind a putter or foot is "occluded"


@dataclass(frozen=True, slots=True)
class BallView:
    """A ball as the camera sees it in one frame."""

    ball_id: int
    box: Box
    state: BallState
    occluded: bool


class Timeline:
    """Which balls and occluders are in the picture at a time, found without scanning the whole clip."""

    def __init__(self, script: ClipScript) -> None:
        self._scene = script.scene
        self._balls = sorted(script.balls, key=lambda b: b.legs[0].t0)
        self._spans = [(b.legs[0].t0, _last_visible(b)) for b in self._balls]
        self._occluders = script.occluders

    def balls(self, t: float) -> list[BallView]:
        """Every visible ball at time t with its image box."""
        views = []
        for ball, (t0, t1) in zip(self._balls, self._spans, strict=True):
            if t0 > t:
                break
            if t > t1:
                continue
            state = ball.state(t)
            if state is None or not state.visible:
                continue
            x, y = self._scene.ball_centre(*state.position)
            r = self._scene.ball_radius(*state.position)
            box = Box(x - r, y - r, x + r, y + r)
            views.append(BallView(ball.ball_id, box, state, self._covered(t, state.position)))
        return views

    def occluders(self, t: float) -> list[tuple[Occluder, tuple[float, float]]]:
        """Occluders in the picture at time t, with their position."""
        out = []
        for occluder in self._occluders:
            at = occluder.at(t)
            if at is not None:
                out.append((occluder, at))
        return out

    def _covered(self, t: float, p: tuple[float, float]) -> bool:
        r = self._scene.ball_radius_units
        return any(occ.hidden_share(at, p, r) > HIDDEN_SHARE for occ, at in self.occluders(t))


def _last_visible(ball: BallPath) -> float:
    return ball.removed_at


def label_putts(script: ClipScript) -> None:
    """Fill in each putt's start time, outcome and detail string from what the camera would see."""
    scene, cal, fps = script.scene, script.scene.calibration, script.scene.fps
    quick_starts: list[float] = []
    labelled: list[PuttTruth] = []
    for putt in script.putts:
        ball = script.balls[putt.ball_id - 1]
        samples: list[tuple[float, Point]] = []
        for f in range(math.ceil(putt.strike_time * fps), math.ceil(ball.end_time * fps) + 1):
            if f in script.dropped:
                continue
            state = ball.state(f / fps)
            if state is not None and state.visible:
                samples.append((f / fps, Point(*scene.ball_centre(*state.position))))
        start = next(
            i for i, (_, p) in enumerate(samples)
            if any(cal.contains(r, p) for r in _RAMP) and not cal.contains(Region.MAT, p)
        )  # fmt: skip
        # `Calibration.lane` is the classifier's own rule, down to a sliver between two bands (nearest band).
        entry = cal.lane(samples[start][1])
        detail = _detail(putt.kind, entry, samples[start:], script)
        outcome = "MAKE" if detail.startswith("MAKE") else "MISS"
        if putt.kind == "QUICK":
            quick_starts.append(samples[start][0])
        labelled.append(replace(putt, start_time=samples[start][0], outcome=outcome, detail=detail))
    script.putts = labelled


def _detail(kind: str, entry: str, samples: Sequence[tuple[float, Point]], script: ClipScript) -> str:
    cal = script.scene.calibration
    if kind == "QUICK":
        return "MISS - QUICK PUTT"
    if kind == "TIMEOUT":
        return f"MISS - TIMEOUT: {entry}"
    if kind == "MAKE":
        quadrant = next(q for _, p in samples if (q := cal.quadrant(p)) is not None)
        return f"MAKE - HOLE: {quadrant} - {entry}"
    stop_regions = (Region.CATCH, Region.HOLE) if kind == "CATCH" else (Region.MAT, Region.LEFT_OF_MAT)
    exit_lane = entry
    # The last band the ball crossed before it stopped counting, the path between frames taken as straight:
    # what the classifier does between two sightings.
    for p in _along(samples):
        if cal.quadrant(p) is not None or any(cal.contains(r, p) for r in stop_regions):
            break
        lane = cal.lane(p)
        if lane in _LANES:
            exit_lane = lane
    label = "CATCH" if kind == "CATCH" else "RETURN"
    return f"MISS - {label}: {entry} - {exit_lane}"


def _along(samples: Sequence[tuple[float, Point]], step: float = 0.5) -> Iterator[Point]:
    """Every sample, and points STEP pixels apart on the straight line between each two."""
    for (_, a), (_, b) in itertools.pairwise(samples):
        yield a
        steps = int(math.hypot(b.x - a.x, b.y - a.y) / step)
        for i in range(1, steps):
            yield Point(a.x + (b.x - a.x) * i / steps, a.y + (b.y - a.y) * i / steps)
    if samples:
        yield samples[-1][1]


def plan_clip(
    scene: Scene,
    rng: np.random.Generator,
    *,
    sessions: int,
    putts: int,
    requests: Sequence[PuttRequest] | None = None,
    idle_gap: tuple[float, float] = (130.0, 170.0),
) -> ClipScript:
    """A clip of SESSIONS sessions of PUTTS putts each (or the REQUESTS, in order, as one session)."""
    writer = ScriptWriter(scene, rng)
    kinds = list(KIND_WEIGHTS)
    weights = np.array(list(KIND_WEIGHTS.values()))
    for session in range(sessions):
        start = writer.t
        todo = list(requests) if requests is not None else [
            PuttRequest(kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]) for _ in range(putts)
        ]  # fmt: skip
        for request in todo:
            writer.add_putt(request)
        last = session == sessions - 1
        writer.end_session(3.0 if last else float(rng.uniform(*idle_gap)))
        if rng.random() < 0.5:
            writer.add_resting_ball(start, writer.script.sessions[-1].end_time + 1.0)
    script = writer.script
    script.duration = writer.t
    frames = int(script.duration * scene.fps)
    dropped = np.flatnonzero(rng.random(frames) < 0.002)
    script.dropped = frozenset(int(f) for f in dropped if f > 0)
    label_putts(script)
    return script


def truth_json(script: ClipScript, timeline: Timeline, frames: int) -> dict[str, Any]:
    """The truth file's content: putts, sessions, dropped frames and per-frame ball boxes."""
    scene = script.scene
    per_frame = []
    for f in range(frames):
        views = timeline.balls(f / scene.fps)
        per_frame.append(
            [[v.ball_id, round(v.box.x1, 2), round(v.box.y1, 2), round(v.box.x2, 2), round(v.box.y2, 2),
              int(v.occluded)] for v in views]
        )  # fmt: skip
    return {
        "seed": scene.seed,
        "width": scene.width,
        "height": scene.height,
        "fps": scene.fps,
        "frames": frames,
        "ball_diameter": round(scene.ball_diameter, 3),
        "camera": scene.camera_kind,
        "camera_tilt": 0.0 if scene.camera is None else round(scene.camera.tilt, 2),
        "dropped_frames": sorted(script.dropped),
        "putts": [asdict(p) for p in script.putts],
        "sessions": [asdict(s) for s in script.sessions],
        "frame_boxes_format": "ball_id, x1, y1, x2, y2, occluded",
        "frame_boxes": per_frame,
    }
