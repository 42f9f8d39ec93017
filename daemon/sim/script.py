"""Session scripts: which putts happen when, with which balls, feet and putter; and the truth they imply.

The expected Proof of Putt string of each putt is computed the way the rules define it, from the ball centre
sampled at frame times and the scene's calibration (its derived lanes and quadrants), never from the
simulator's own notion of lanes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from daemon.models import Point
from daemon.sim.motion import (
    Approach,
    BallPath,
    PuttKind,
    approach_points,
    putt_catch,
    putt_make,
    putt_return,
    putt_timeout,
)
from daemon.sim.rig import HOLE_CENTRE, Scene
from daemon.vision.calibration import Region

KIND_WEIGHTS: dict[PuttKind, float] = {
    "MAKE": 0.5,
    "CATCH": 0.2,
    "RETURN": 0.13,
    "TIMEOUT": 0.1,
    "QUICK": 0.07,
}
_RAMP = (Region.RAMP_LEFT, Region.RAMP_CENTER, Region.RAMP_RIGHT, Region.RAMP)
_APPROACHES: tuple[Approach, ...] = ("near", "side_neg", "side_pos", "far")


@dataclass(frozen=True, slots=True)
class PuttRequest:
    """A putt to script: its kind and, for a make, the cup quadrant it should enter first."""

    kind: PuttKind
    quadrant: str | None = None


_GRID = np.linspace(-1, 1, 15)
_DISC = np.array([(x, y) for x in _GRID for y in _GRID if x * x + y * y <= 1])  # points of the unit disc


@dataclass(frozen=True, slots=True)
class Occluder:
    """A putter head or a foot crossing the picture (rig units)."""

    kind: str  # "putter" or "foot"
    t0: float
    t1: float
    start: tuple[float, float]
    end: tuple[float, float]
    size: float

    def hidden_share(self, at: tuple[float, float], ball: tuple[float, float], radius: float) -> float:
        """Share of a ball of RADIUS at BALL hidden by this occluder standing at AT (all in rig units).

        The shapes are the ones the renderer draws, expressed in rig axes: the putter head a 3.2 x 1.2 size
        rectangle lying along x, the foot a 1.8 x 0.9 size half-axes ellipse.
        """
        dx = _DISC[:, 0] * radius + (ball[0] - at[0])
        dy = _DISC[:, 1] * radius + (ball[1] - at[1])
        if self.kind == "putter":
            inside = (np.abs(dx) <= 1.6 * self.size) & (np.abs(dy) <= 0.6 * self.size)
        else:
            inside = (dx / (1.8 * self.size)) ** 2 + (dy / (0.9 * self.size)) ** 2 <= 1
        return float(inside.mean())

    def at(self, t: float) -> tuple[float, float] | None:
        if not self.t0 <= t <= self.t1:
            return None
        u = (t - self.t0) / max(self.t1 - self.t0, 1e-9)
        return self.start[0] + (self.end[0] - self.start[0]) * u, self.start[1] + (
            self.end[1] - self.start[1]
        ) * u


@dataclass(frozen=True, slots=True)
class PuttTruth:
    """One scripted putt and the answer the rules give for it."""

    index: int
    session: int
    ball_id: int
    kind: str
    strike_time: float
    start_time: float  # first frame with the ball on the ramp
    first_frame: int
    last_frame: int
    outcome: str
    detail: str


@dataclass(frozen=True, slots=True)
class SessionTruth:
    """One scripted session."""

    index: int
    start_time: float
    end_time: float
    putts: int


@dataclass
class ClipScript:
    """Everything that happens in a clip."""

    scene: Scene
    duration: float
    balls: list[BallPath] = field(default_factory=list)
    occluders: list[Occluder] = field(default_factory=list)
    putts: list[PuttTruth] = field(default_factory=list)
    sessions: list[SessionTruth] = field(default_factory=list)
    dropped: frozenset[int] = frozenset()


def _approach_for(scene: Scene, quadrant: str | None, rng: np.random.Generator) -> Approach:
    """Which side to enter the cup from so that the calibration calls the first quadrant QUADRANT."""
    if quadrant is None:
        return _APPROACHES[int(rng.choice(4, p=[0.55, 0.18, 0.18, 0.09]))]
    for approach in _APPROACHES:
        if _first_quadrant(scene, approach) == quadrant:
            return approach
    raise ValueError(f"no approach enters quadrant {quadrant}")


def _first_quadrant(scene: Scene, approach: Approach) -> str | None:
    """The quadrant the calibration sees a make along APPROACH enter first (its path sampled finely).

    Probing single points near the rim failed for about one seed in six: the derived quadrants are truncated
    to whole pixels and the rig is turned a few degrees, so a probe at 0.9 r fell outside every quadrant.
    """
    r = scene.cup_radius_units
    line, waypoints = approach_points(approach, r)
    points = [(HOLE_CENTRE[0] - 3 * r, line), *waypoints]
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        for u in np.linspace(0.0, 1.0, 64):
            at = scene.ball_centre(ax + (bx - ax) * float(u), ay + (by - ay) * float(u))
            quadrant = scene.calibration.quadrant(Point(*at))
            if quadrant is not None:
                return quadrant
    return None


def _spot(rng: np.random.Generator, line_y: float) -> tuple[float, float]:
    return float(rng.uniform(150, 260)), line_y


def _line_for(kind: PuttKind, approach: Approach, scene: Scene, rng: np.random.Generator) -> float:
    _, cy = HOLE_CENTRE
    r = scene.cup_radius_units
    if kind == "MAKE":
        if approach == "near":
            return cy + float(rng.uniform(-0.25, 0.25)) * r
        return approach_points(approach, r)[0]
    if kind == "CATCH" and rng.random() < 0.3:
        return cy + float(rng.uniform(-0.3, 0.3)) * r  # lips out over the cup into the catch
    if kind == "CATCH":
        side = 1 if rng.random() < 0.5 else -1
        return cy + side * float(rng.uniform(1.35, 2.6)) * r
    return float(rng.uniform(110, 280))


class ScriptWriter:
    """Builds a clip script putt by putt."""

    def __init__(self, scene: Scene, rng: np.random.Generator) -> None:
        self.scene = scene
        self.rng = rng
        self.script = ClipScript(scene, 0.0)
        self.t = 2.0
        self._current: BallPath | None = None
        self._session = 0
        self._session_putts: list[int] = []

    def _new_ball(self, at: tuple[float, float], t: float) -> BallPath:
        ball = BallPath(len(self.script.balls) + 1).place(t, at)
        self.script.balls.append(ball)
        return ball

    def _pick_up(self, ball: BallPath | None, t: float) -> None:
        if ball is not None:
            ball.remove(max(t, ball.end_time))

    def _set_up(self, line_y: float) -> tuple[BallPath, float]:
        """Pick up the last ball, place a new one on the spot, wait, and return it with its strike time."""
        place_t = self.t
        self._pick_up(self._current, place_t - 0.3)
        spot = _spot(self.rng, line_y)
        ball = self._new_ball(spot, place_t)
        ball.add(float(self.rng.uniform(1.0, 2.5)), spot, "rest")
        strike = ball.end_time
        d = self.scene.ball_radius_units * 2
        self.script.occluders.append(
            Occluder(
                "putter",
                strike - 0.5,
                strike + 0.12,
                (spot[0] - 4 * d, spot[1]),
                (spot[0] + 2 * d, spot[1]),
                d,
            )
        )
        if self.rng.random() < 0.35:
            t0 = place_t + 0.2
            foot = (spot[0] - 2 * d, spot[1] + 3 * d)
            self.script.occluders.append(
                Occluder("foot", t0, t0 + 0.35, foot, (spot[0], spot[1] + d), 2.2 * d)
            )
        return ball, strike

    def _motion(self, ball: BallPath, kind: PuttKind, approach: Approach) -> None:
        r = self.scene.cup_radius_units
        if kind == "MAKE":
            putt_make(ball, self.rng, approach, r)
        elif kind == "CATCH":
            putt_catch(ball, self.rng, r)
        elif kind == "TIMEOUT":
            putt_timeout(ball, self.rng, r)
        else:
            putt_return(ball, self.rng, r)

    def add_putt(self, request: PuttRequest) -> None:
        """Script one putt (two for a quick putt) and move the clock past it."""
        if request.kind == "QUICK":
            self._quick_putt()
            return
        approach = _approach_for(self.scene, request.quadrant, self.rng) if request.kind == "MAKE" else "near"
        ball, strike = self._set_up(_line_for(request.kind, approach, self.scene, self.rng))
        self._motion(ball, request.kind, approach)
        self._record(ball, request.kind, strike)
        self._current = ball
        self.t = ball.end_time + float(self.rng.uniform(3, 15))

    def _quick_putt(self) -> None:
        """A soft putt that stops on the ramp, and a second ball putted before it comes back."""
        lines = (float(self.rng.uniform(100, 125)), float(self.rng.uniform(265, 290)))
        first_line, second_line = lines if self.rng.random() < 0.5 else lines[::-1]
        first, strike = self._set_up(first_line)
        second_spot = _spot(self.rng, second_line)
        second = self._new_ball(second_spot, strike - 0.8).rest_until(strike + 1.6)
        putt_return(first, self.rng, self.scene.cup_radius_units, rest_on_ramp=3.5)
        kind: PuttKind = "MAKE" if self.rng.random() < 0.6 else "CATCH"
        self._motion(second, kind, "near")
        self._record(first, "QUICK", strike)
        self._record(second, kind, strike + 1.6)
        self._pick_up(first, max(first.end_time, second.end_time) + 1.0)
        self._current = second
        self.t = max(first.end_time, second.end_time) + float(self.rng.uniform(3, 15))

    def _record(self, ball: BallPath, kind: str, strike: float) -> None:
        fps = self.scene.fps
        self.script.putts.append(
            PuttTruth(len(self.script.putts) + 1, self._session, ball.ball_id, kind, strike, strike,
                      math.floor(strike * fps), math.ceil(ball.end_time * fps), "", "")
        )  # fmt: skip
        self._session_putts.append(len(self.script.putts) - 1)

    def end_session(self, idle_gap: float) -> None:
        """Close the session and wait longer than the idle timeout."""
        putts = [self.script.putts[i] for i in self._session_putts]
        end = max(self.script.balls[p.ball_id - 1].end_time for p in putts)
        self.script.sessions.append(SessionTruth(self._session, putts[0].strike_time, end, len(putts)))
        self._session += 1
        self._session_putts = []
        self.t = max(self.t, end) + idle_gap

    def add_resting_ball(self, t0: float, t1: float) -> None:
        """A spare ball lying still on the mat or in the ignore area."""
        on_mat = self.rng.random() < 0.5
        spot = (float(self.rng.uniform(125, 160)), float(self.rng.uniform(10, 60))) if on_mat else (
            float(self.rng.uniform(20, 300)), float(self.rng.uniform(330, 390)))  # fmt: skip
        self._new_ball(spot, t0).remove(t1)
