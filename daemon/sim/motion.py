"""Ball motion in rig units: piecewise paths that roll, slow, stop, roll back, drop out of sight and reappear.

A path is a list of legs, each moving the ball between two points over a time span with an easing that stands
in for the physics: rolling on the mat and up the ramp decelerates, rolling back down accelerates then slows,
the return track carries the ball at a steady speed. A hidden leg is the ball in the cup or in a hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from daemon.sim.rig import HOLE_CENTRE, RAMP, REST_SPOT, RETURN_IN, RETURN_OUT

Ease = Literal["decel", "accel", "linear", "rest", "hidden"]
PuttKind = Literal["MAKE", "CATCH", "RETURN", "TIMEOUT", "QUICK"]
Approach = Literal["near", "side_neg", "side_pos", "far"]
XY = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Leg:
    """The ball goes from `start` to `end` between t0 and t1."""

    t0: float
    t1: float
    start: XY
    end: XY
    ease: Ease

    def at(self, t: float) -> XY:
        u = 0.0 if self.t1 <= self.t0 else min(max((t - self.t0) / (self.t1 - self.t0), 0.0), 1.0)
        if self.ease == "decel":
            u = 1 - (1 - u) ** 2
        elif self.ease == "accel":
            u = u * u
        elif self.ease in ("rest", "hidden"):
            u = 0.0
        return self.start[0] + (self.end[0] - self.start[0]) * u, self.start[1] + (
            self.end[1] - self.start[1]
        ) * u


@dataclass(frozen=True, slots=True)
class BallState:
    """Where a ball is at one instant, in rig units, and how fast it moves."""

    position: XY
    visible: bool
    speed: float  # rig units per second
    heading: float  # radians


class BallPath:
    """One ball's whole life in a clip: legs back to back."""

    def __init__(self, ball_id: int) -> None:
        self.ball_id = ball_id
        self.legs: list[Leg] = []
        self.removed_at = math.inf

    @property
    def end_time(self) -> float:
        return self.legs[-1].t1 if self.legs else 0.0

    @property
    def end_point(self) -> XY:
        return self.legs[-1].end

    def add(self, duration: float, end: XY, ease: Ease) -> BallPath:
        """Append a leg starting where and when the last one ended."""
        t0 = self.end_time
        start = self.end_point if self.legs else end
        self.legs.append(
            Leg(t0, t0 + duration, start, end if ease not in ("rest", "hidden") else start, ease)
        )
        return self

    def place(self, t: float, at: XY) -> BallPath:
        """Put the ball at a point at time t (hidden until then if it was elsewhere)."""
        if not self.legs:
            self.legs.append(Leg(0.0, t, at, at, "hidden"))
        else:
            self.legs.append(Leg(self.end_time, t, self.end_point, self.end_point, "hidden"))
        self.legs.append(Leg(t, t, at, at, "rest"))
        return self

    def rest_until(self, t: float) -> BallPath:
        """Stay where the last leg ended until time t."""
        if t > self.end_time:
            self.add(t - self.end_time, self.end_point, "rest")
        return self

    def remove(self, t: float) -> BallPath:
        """Picked up at time t: hidden from then on."""
        self.rest_until(t)
        self.removed_at = t
        return self

    def state(self, t: float) -> BallState | None:
        """The ball at time t, or None before its first leg."""
        if not self.legs or t < self.legs[0].t0 or t >= self.removed_at:
            return None
        leg = self.legs[-1]
        for candidate in self.legs:
            if candidate.t0 <= t < candidate.t1:
                leg = candidate
                break
        if t >= self.end_time:
            return BallState(self.end_point, leg.ease != "hidden", 0.0, 0.0)
        p = leg.at(t)
        q = leg.at(min(t + 1e-3, leg.t1))
        speed = math.hypot(q[0] - p[0], q[1] - p[1]) / 1e-3
        return BallState(p, leg.ease != "hidden", speed, math.atan2(q[1] - p[1], q[0] - p[0]))


def _roll_time(a: XY, b: XY, speed: float) -> float:
    return max(math.dist(a, b) / speed, 0.15)


def approach_points(approach: Approach, r: float) -> tuple[float, list[XY]]:
    """Start line y and the waypoints into the cup (radius R) for each side the ball enters from."""
    cx, cy = HOLE_CENTRE
    if approach == "near":
        return (cy, [(cx - 0.15 * r, cy)])
    if approach in ("side_neg", "side_pos"):
        # Along the lip, 0.95 r off the line through the centre: the ball crosses the rim about 72 degrees
        # from the putt's direction, far from the 45-degree quadrant boundaries whatever the rig's jitter.
        y = cy + (-0.95 if approach == "side_neg" else 0.95) * r
        return (y, [(cx - 0.25 * r, y), (cx - 0.05 * r, cy + (y - cy) * 0.2 / 0.95)])
    side = cy - 1.75 * r
    return (side, [(cx, side), (cx + 1.6 * r, side), (cx + 1.55 * r, cy), (cx + 0.1 * r, cy)])


def add_return(path: BallPath, rng: np.random.Generator) -> None:
    """Out of the cup or catch, along the return track, onto the mat to rest."""
    path.add(float(rng.uniform(0.5, 1.2)), path.end_point, "hidden")
    path.legs.append(Leg(path.end_time, path.end_time, RETURN_IN, RETURN_IN, "rest"))
    path.add(float(rng.uniform(1.0, 1.6)), RETURN_OUT, "linear")
    rest = (REST_SPOT[0] + float(rng.uniform(-15, 15)), REST_SPOT[1] + float(rng.uniform(-10, 10)))
    path.add(float(rng.uniform(0.6, 1.0)), rest, "decel")


def putt_make(path: BallPath, rng: np.random.Generator, approach: Approach, r: float) -> None:
    """Roll into the cup from the chosen side, drop, come back along the return track."""
    speed = float(rng.uniform(170, 260))
    for point in approach_points(approach, r)[1]:
        path.add(_roll_time(path.end_point, point, speed), point, "linear" if approach != "near" else "decel")
        speed *= 0.8
    add_return(path, rng)


def putt_catch(path: BallPath, rng: np.random.Generator, r: float) -> None:
    """Miss wide (or lip out over the cup) into the catch, drop to its floor, then the return track."""
    cx, _ = HOLE_CENTRE
    y = path.end_point[1]
    speed = float(rng.uniform(260, 360))
    into = (float(rng.uniform(506, 526)), min(max(y + float(rng.uniform(-20, 20)), 85.0), 305.0))
    path.add(_roll_time(path.end_point, (cx, y), speed), (cx, y), "linear")
    path.add(_roll_time((cx, y), into, speed), into, "linear")
    floor = (float(rng.uniform(506, 526)), 312.0)
    path.add(float(rng.uniform(0.4, 0.8)), floor, "accel")
    path.add(0.25, RETURN_IN, "linear")
    path.add(float(rng.uniform(1.0, 1.6)), RETURN_OUT, "linear")
    rest = (REST_SPOT[0] + float(rng.uniform(-15, 15)), REST_SPOT[1] + float(rng.uniform(-10, 10)))
    path.add(float(rng.uniform(0.6, 1.0)), rest, "decel")
    del r


def putt_return(path: BallPath, rng: np.random.Generator, r: float, rest_on_ramp: float = 0.2) -> None:
    """Too soft: up the ramp, stop short of the cup, roll back down onto the mat."""
    cx, cy = HOLE_CENTRE
    # Stay 10 units inside the ramp's sides: a quick putt's line runs close to them, and a ball resting on the
    # edge would be on no region at all.
    y = min(max(path.end_point[1] + float(rng.uniform(-12, 12)), RAMP[0][1] + 10.0), RAMP[2][1] - 10.0)
    x = float(rng.uniform(385, 470))
    if abs(y - cy) < r + 14:
        x = min(x, cx - r - 14)
    stop = (x, y)
    path.add(_roll_time(path.end_point, stop, 160), stop, "decel")
    path.add(rest_on_ramp, stop, "rest")
    back = (float(rng.uniform(250, 320)), stop[1] + float(rng.uniform(-12, 12)))
    path.add(_roll_time(stop, back, 110), back, "decel")


def putt_timeout(path: BallPath, rng: np.random.Generator, r: float) -> None:
    """Stops on the ramp and stays there, or runs off the ramp's side out of play."""
    cx, cy = HOLE_CENTRE
    if rng.random() < 0.5:
        x = float(rng.uniform(385, 480))
        y = path.end_point[1]
        if abs(y - cy) < r + 12 and x > cx - r - 14:
            x = cx - r - 14  # stop short: rolling straight on would cross the cup
        path.add(_roll_time(path.end_point, (x, y), 170), (x, y), "decel")
        path.add(10.0, (x, y), "rest")
    else:
        # Over the ramp's far edge, away from the return track, and out of play on the floor.
        edge = (float(rng.uniform(395, 470)), 95.0)
        off = (edge[0] + float(rng.uniform(5, 20)), 20.0)
        path.add(_roll_time(path.end_point, edge, 220), edge, "linear")
        path.add(_roll_time(edge, off, 150), off, "decel")
        path.add(5.0, off, "rest")
