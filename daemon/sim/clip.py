"""Simulated clips: a script rendered to an h264 mp4 with its truth and calibration, or played live.

The mp4 has a constant frame rate, so a dropped frame repeats the one before it; the live camera skips the
index instead, as a real camera's timestamps would show.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np

from daemon.atomicfile import write_text_atomic
from daemon.errors import CameraError
from daemon.models import Frame
from daemon.progress import Progress
from daemon.sim.perspective import FLAT, CameraChoice, CameraKind
from daemon.sim.realism import PLAIN, Extras, Realism
from daemon.sim.render import Renderer
from daemon.sim.rig import Scene, make_scene
from daemon.sim.script import ClipScript, PuttRequest
from daemon.sim.truth import Timeline, plan_clip, truth_json
from daemon.vision.mp4 import Mp4Writer


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """What to simulate."""

    seed: int = 0
    sessions: int = 1
    putts: int = 10
    width: int = 640
    height: int = 480
    fps: float = 30.0
    requests: tuple[PuttRequest, ...] | None = None
    idle_gap: tuple[float, float] = (130.0, 170.0)
    default_rig: bool = False
    camera: CameraChoice = FLAT
    realism: Realism = PLAIN


def build_clip(spec: ClipSpec) -> tuple[ClipScript, Renderer, Timeline]:
    """Script a clip and prepare its renderer."""
    scene: Scene = make_scene(
        spec.seed, spec.width, spec.height, spec.fps, vary_pose=not spec.default_rig, camera=spec.camera
    )
    rng = np.random.default_rng([spec.seed, 1])
    script = plan_clip(
        scene, rng, sessions=spec.sessions, putts=spec.putts, requests=spec.requests, idle_gap=spec.idle_gap
    )
    return script, Renderer(scene, spec.seed, extras=Extras.draw(spec.realism, spec.seed)), Timeline(script)


def write_clip(spec: ClipSpec, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Render clip.mp4, truth.json and calibration.json into OUT; returns the truth."""
    script, renderer, timeline = build_clip(spec)
    out.mkdir(parents=True, exist_ok=True)
    frames = int(script.duration * spec.fps)
    tmp = out / ".clip.mp4.tmp.mp4"
    encoder = Mp4Writer(tmp, spec.width, spec.height, spec.fps)
    bar = Progress("rendering", frames) if progress else None
    try:
        for f in range(frames):
            if f not in script.dropped:
                t = f / spec.fps
                image = renderer.render(t, timeline.balls(t), timeline.occluders(t))
            encoder.write(image)
            if bar is not None:
                bar.update(f + 1)
    finally:
        encoder.close()
        if bar is not None:
            bar.close()
    tmp.replace(out / "clip.mp4")
    truth = truth_json(script, timeline, frames)
    write_text_atomic(out / "truth.json", json.dumps(truth, separators=(",", ":")))
    script.scene.calibration.save(out / "calibration.json")
    return truth


class SimulatedCamera:
    """A live frame source that renders a scripted clip at its frame rate; `truth` says what happened."""

    def __init__(
        self,
        spec: ClipSpec,
        *,
        realtime: bool = True,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        stall_at: float | None = None,
        stall_for: float = 3600.0,
    ) -> None:
        self.spec = spec
        self.script, self._renderer, self._timeline = build_clip(spec)
        self.frames = int(self.script.duration * spec.fps)
        self._realtime, self._clock, self._sleep = realtime, clock, sleep
        # A camera that freezes: read() blocks once, at STALL_AT seconds of clip time, for STALL_FOR seconds.
        self._stall_at, self._stall_for = stall_at, stall_for
        self._epoch = clock()
        self._next = 0

    @classmethod
    def from_url(cls, url: str, width: int, height: int, fps: float) -> SimulatedCamera:
        """`sim://?seed=S&putts=M&sessions=N&realtime=1&stall_at=T&stall_for=D&camera=oblique` (all optional;
        camera is top, oblique or random)."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)

        def number(key: str, default: int) -> int:
            try:
                return int(query.get(key, [str(default)])[0])
            except ValueError as err:
                raise CameraError(f"{url}: {key} must be a whole number") from err

        def seconds(key: str) -> float | None:
            if key not in query:
                return None
            try:
                value = float(query[key][0])
            except ValueError as err:
                raise CameraError(f"{url}: {key} must be a number of seconds") from err
            if not 0 <= value < float("inf"):  # also refuses nan
                raise CameraError(f"{url}: {key} must be a number of seconds")
            return value

        kinds: dict[str, CameraKind] = {kind: kind for kind in get_args(CameraKind)}
        camera = kinds.get(query.get("camera", ["top"])[0])
        if camera is None:
            raise CameraError(f"{url}: camera must be one of {', '.join(kinds)}")
        spec = ClipSpec(number("seed", 0), number("sessions", 1), number("putts", 10), width, height, fps,
                        default_rig=number("seed", 0) == 0, camera=CameraChoice(camera))  # fmt: skip
        stall_for = seconds("stall_for")
        return cls(
            spec,
            realtime=bool(number("realtime", 1)),
            stall_at=seconds("stall_at"),
            stall_for=3600.0 if stall_for is None else stall_for,
        )

    @property
    def truth(self) -> ClipScript:
        """The script being played, with every putt's expected outcome."""
        return self.script

    @property
    def epoch(self) -> float:
        """Clock time of frame 0."""
        return self._epoch

    def read(self) -> Frame | None:
        while self._next in self.script.dropped:
            self._next += 1
        if self._next >= self.frames:
            return None
        f = self._next
        self._next += 1
        t = f / self.spec.fps
        if self._stall_at is not None and t >= self._stall_at:
            self._stall_at = None  # one freeze per camera; reopening makes a new camera
            self._sleep(self._stall_for)
        if self._realtime:
            wait = self._epoch + t - self._clock()
            if wait > 0:
                self._sleep(wait)
        image = self._renderer.render(t, self._timeline.balls(t), self._timeline.occluders(t))
        return Frame(f, self._epoch + t, image.copy())

    def close(self) -> None:
        self._next = self.frames
