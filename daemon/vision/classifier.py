"""Putt classification stage: tracked balls in, one `PuttEvent` per putt out, in Proof of Putt terms.

A putt starts when a ball that was on the mat within `mat_window` seconds is on the ramp; its entry lane is
the ramp band it is in then. The putt ends as
- `MAKE - HOLE: <quadrant> - <entry>` once it entered the cup without touching the catch, and either shows
  up on the return track or stays gone (a ball that drops into the cup is a make, its return seen or not);
- `MISS - CATCH: <entry> - <exit>` once it touched the catch (a lip-out is a miss);
- `MISS - RETURN: <entry> - <exit>` when it rolls back onto the mat;
- `MISS - TIMEOUT: <entry>` when it neither comes back nor reaches the return track in time;
- `MISS - QUICK PUTT` when another putt starts while this ball is still on the ramp.
Only frame timestamps are used, never the wall clock, so replaying a file gives the same answer at any speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from daemon.models import BallObservation, Lane, Point, PuttEvent, PuttKind, Quadrant, TrackedBall
from daemon.vision.calibration import Calibration, Region

_RAMP_FAMILY = (Region.RAMP_LEFT, Region.RAMP_CENTER, Region.RAMP_RIGHT, Region.RAMP)
_HOLE_FAMILY = (Region.HOLE_TOP, Region.HOLE_RIGHT, Region.HOLE_LOW, Region.HOLE_LEFT, Region.HOLE)
_QUADRANT_BY_ANGLE: tuple[Quadrant, ...] = ("TOP", "RIGHT", "LOW", "LEFT")  # image +x, +y, -x, -y


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    """Timings of the putt rules, in seconds (Proof of Putt defaults)."""

    mat_window: float = 1.0
    return_delay: float = 0.25
    exit_timeout: float = 3.0
    putt_timeout: float = 8.0


@dataclass(slots=True)
class _Putt:
    track_id: int
    start_time: float
    entry_lane: Lane
    exit_lane: Lane
    last_ramp_time: float
    last_seen_time: float
    quadrant: Quadrant | None = None
    entered_hole: bool = False
    touched_catch: bool = False
    path: list[Point] = field(default_factory=list)
    # Balls already on the return track at the start are earlier putts coming back, not this one.
    returning_before: frozenset[int] = frozenset()


class PuttClassifier:
    """Follows each putt's ball through the calibrated regions and names the outcome."""

    def __init__(self, calibration: Calibration, config: ClassifierConfig) -> None:
        self._cal = calibration
        self._config = config
        self._last_on_mat: dict[int, float] = {}
        self._putt: _Putt | None = None

    def reset(self) -> None:
        """Forget the putt in progress and every ball's history."""
        self._last_on_mat.clear()
        self._putt = None

    @property
    def putt_in_progress(self) -> bool:
        return self._putt is not None

    def update(self, observation: BallObservation) -> list[PuttEvent]:
        """Advance by one frame; return the putts that were decided in it."""
        t = observation.timestamp
        events: list[PuttEvent] = []
        seen = [
            b for b in observation.balls if b.seen and not self._cal.contains(Region.IGNORE_AREA, b.position)
        ]
        for ball in seen:
            if self._cal.contains(Region.MAT, ball.position):
                self._last_on_mat[ball.track_id] = t
        live = {b.track_id for b in observation.balls}
        self._last_on_mat = {k: v for k, v in self._last_on_mat.items() if k in live}

        starter = self._starting_ball(seen, t)
        if starter is not None:
            if self._putt is not None:
                events.append(self._interrupted(self._putt, t))
            self._putt = self._start(starter, seen, t)
            return events
        if self._putt is not None:
            event = self._follow(self._putt, seen, t)
            if event is not None:
                events.append(event)
                self._putt = None
        return events

    def flush(self, t: float) -> list[PuttEvent]:
        """Decide the putt in progress now (at shutdown or end of a clip)."""
        if self._putt is None:
            return []
        event = self._timeout(self._putt, t)
        self._putt = None
        return [event]

    def _region_of(self, point: Point, family: tuple[Region, ...]) -> bool:
        return any(self._cal.contains(region, point) for region in family)

    def _starting_ball(self, seen: list[TrackedBall], t: float) -> TrackedBall | None:
        for ball in seen:
            if self._putt is not None and ball.track_id == self._putt.track_id:
                continue
            recently_on_mat = t - self._last_on_mat.get(ball.track_id, -math.inf) <= self._config.mat_window
            on_mat = self._cal.contains(Region.MAT, ball.position)
            if recently_on_mat and not on_mat and self._region_of(ball.position, _RAMP_FAMILY):
                return ball
        return None

    def _start(self, ball: TrackedBall, seen: list[TrackedBall], t: float) -> _Putt:
        lane = self._cal.lane(ball.position)
        returning = frozenset(b.track_id for b in seen if self._cal.contains(Region.RETURN_TRACK, b.position))
        self._last_on_mat.pop(ball.track_id, None)
        return _Putt(ball.track_id, t, lane, lane, t, t, path=[ball.position], returning_before=returning)

    def _follow(self, putt: _Putt, seen: list[TrackedBall], t: float) -> PuttEvent | None:
        ball = next((b for b in seen if b.track_id == putt.track_id), None)
        if ball is not None:
            event = self._step(putt, ball.position, t)
            if event is not None:
                return event
        returned = [
            b
            for b in seen
            if b.track_id != putt.track_id
            and b.track_id not in putt.returning_before
            and self._cal.contains(Region.RETURN_TRACK, b.position)
        ]
        if returned and (putt.entered_hole or putt.touched_catch):
            # The ball came out of the cup or the catch under a new track id.
            return self._on_return_track(putt, t)
        waited = t - max(putt.last_ramp_time, putt.last_seen_time)
        if waited > self._config.exit_timeout or t - putt.start_time > self._config.putt_timeout:
            return self._timeout(putt, t)
        return None

    def _step(self, putt: _Putt, p: Point, t: float) -> PuttEvent | None:
        putt.path.append(p)
        putt.last_seen_time = t
        quadrant = self._cal.quadrant(p)
        if quadrant is not None or self._cal.contains(Region.HOLE, p):
            putt.entered_hole = True
            if putt.quadrant is None:
                putt.quadrant = quadrant or self._quadrant_by_angle(p)
            putt.last_ramp_time = t
            return None
        if self._cal.contains(Region.RETURN_TRACK, p):
            return self._on_return_track(putt, t)
        if self._cal.contains(Region.CATCH, p):
            putt.touched_catch = True
            return None
        if self._region_of(p, _RAMP_FAMILY):
            putt.last_ramp_time = t
            lane = self._cal.lane(p)
            # The exit lane is where the ball left the ramp, not where it rolls after the catch or cup.
            if lane in ("LEFT", "CENTER", "RIGHT") and not (putt.touched_catch or putt.entered_hole):
                putt.exit_lane = lane
            return None
        back_on_mat = self._cal.contains(Region.MAT, p) or self._cal.contains(Region.LEFT_OF_MAT, p)
        if back_on_mat and t - putt.start_time > self._config.return_delay:
            self._last_on_mat[putt.track_id] = t
            return self._finish(putt, "RETURN", t)
        return None

    def _on_return_track(self, putt: _Putt, t: float) -> PuttEvent:
        if putt.touched_catch:
            return self._finish(putt, "CATCH", t)
        if putt.entered_hole:
            return self._finish(putt, "HOLE", t)
        # Reached the return track without being seen in the cup or the catch: it can only have dropped in.
        putt.quadrant = self._quadrant_by_angle(putt.path[-1])
        return self._finish(putt, "HOLE", t)

    def _timeout(self, putt: _Putt, t: float) -> PuttEvent:
        if putt.touched_catch:
            return self._finish(putt, "CATCH", t)
        if putt.entered_hole:
            return self._finish(putt, "HOLE", t)
        return self._finish(putt, "TIMEOUT", t)

    def _interrupted(self, putt: _Putt, t: float) -> PuttEvent:
        # A ball already in the cup or the catch has its answer; only one still on the ramp is a quick putt.
        if putt.entered_hole or putt.touched_catch:
            return self._timeout(putt, t)
        return self._finish(putt, "QUICK_PUTT", t)

    def _quadrant_by_angle(self, p: Point) -> Quadrant:
        centre = self._cal.polygons[Region.HOLE_TOP][0]
        angle = math.degrees(math.atan2(p.y - centre[1], p.x - centre[0])) % 360
        return _QUADRANT_BY_ANGLE[int(((angle + 45) % 360) // 90)]

    def _finish(self, putt: _Putt, kind: PuttKind, t: float) -> PuttEvent:
        exit_lane = putt.exit_lane if kind in ("CATCH", "RETURN") else None
        quadrant = None
        if kind == "HOLE":
            quadrant = putt.quadrant or self._quadrant_by_angle(putt.path[-1])
        return PuttEvent(kind, putt.start_time, t, putt.entry_lane, exit_lane, quadrant, tuple(putt.path))
