"""Putt classification stage: tracked balls in, one `PuttEvent` per putt out, in Proof of Putt terms.

A putt starts when a ball that was on the mat within `mat_window` seconds is on the ramp; its entry lane is
the ramp band it is in then. The putt ends as
- `MAKE - HOLE: <quadrant> - <entry>` once it entered the cup without touching the catch, and either shows
  up on the return track or stays gone (a ball that drops into the cup is a make, its return seen or not);
- `MISS - CATCH: <entry> - <exit>` once it touched the catch (a lip-out is a miss);
- `MISS - RETURN: <entry> - <exit>` when it rolls back onto the mat;
- `MISS - TIMEOUT: <entry>` when it neither comes back nor reaches the return track in time;
- `MISS - QUICK PUTT` when another putt starts while this ball is still on the ramp.
A "ball" that arrives on the ramp at speed and then sits dead still was never a ball rolling there: the track
of a ball hidden on the mat jumped to a false detection beside it (a putter head, a bright spot). That putt is
dropped, with a log line, as soon as it is clear.
Only frame timestamps are used, never the wall clock, so replaying a file gives the same answer at any speed.

Real footage loses the ball where it matters (a dark catch, a shiny tray) and calibrations are clicked a few
pixels off, so the outcome rests on evidence gathered over the whole putt, never on one frame:
- one sighting in the cup or the catch is enough, and so is a straight path between two sightings that
  crosses the catch;
- a ball in no region but within `region_margin` pixels of the catch, cup or return track counts as in it;
- a ball that appears in the cup, the catch or the return track after the putt's ball vanished is that ball;
- a ball that reaches the return track unseen in both cup and catch went where its last roll was heading;
- a ball lost from sight in the cup dropped in: seen again by the catch, it is on its way back;
- a ball seen in the cup and then on the ramp, more than `region_margin` past the cup's edge, rolled over it
  without dropping: no make, and its exit lane stays the one it had at the cup.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

from daemon.models import BallObservation, Lane, Point, PuttEvent, PuttKind, Quadrant, TrackedBall
from daemon.vision.calibration import Calibration, Region

_RAMP_FAMILY = (Region.RAMP_LEFT, Region.RAMP_CENTER, Region.RAMP_RIGHT, Region.RAMP)
_HOLE_FAMILY = (Region.HOLE_TOP, Region.HOLE_RIGHT, Region.HOLE_LOW, Region.HOLE_LEFT, Region.HOLE)
_QUADRANT_BY_ANGLE: tuple[Quadrant, ...] = ("TOP", "RIGHT", "LOW", "LEFT")  # image +x, +y, -x, -y
# Where a ball is, in the original's priority order of regions.
Place = Literal["HOLE", "RETURN", "CATCH", "RAMP", "MAT", "NONE"]
_STEP_PX = 2.0  # spacing of the points checked along a straight stretch the ball was not seen on
_LANE_STEP_PX = 0.5  # the same between two sightings on the ramp, for the lane it crossed
# Where a ball's exit lane is settled: the cup, the catch, or back on the mat.
_LANE_ENDS = (*_HOLE_FAMILY, Region.CATCH, Region.MAT, Region.LEFT_OF_MAT)
_DROPPED_AFTER = 0.2  # seconds unseen after a sighting in the cup: the ball dropped in
_STILL_PX = 1.5  # a ball seen this close to where its putt started has not moved (detections jitter less)
_STILL_SIGHTINGS = 3  # sightings that close in a row, after arriving at speed: it never rolled there
_STOPPED_DEAD_PX = 6.0  # how far its speed at the start would have carried it by then, at the least

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    """Timings of the putt rules in seconds (Proof of Putt defaults), and the slack for a calibration."""

    mat_window: float = 1.0
    return_delay: float = 0.25
    exit_timeout: float = 3.0
    putt_timeout: float = 8.0
    region_margin: float = 6.0  # pixels: how far off a calibration may be clicked


@dataclass(slots=True)
class _Putt:
    track_id: int
    start_time: float
    entry_lane: Lane
    exit_lane: Lane
    last_ramp_time: float
    last_seen_time: float
    last_ramp_point: Point
    last_ramp_velocity: Point
    path: list[Point]
    # Balls already on the return track at the start are earlier putts coming back, not this one.
    returning_before: frozenset[int]
    start_speed: float  # pixels per second when it reached the ramp
    still_sightings: int = 0
    rolled: bool = False  # seen away from where it started, or settled as a slow arrival
    quadrant: Quadrant | None = None
    entered_hole: bool = False
    touched_catch: bool = False
    rolled_over_cup: bool = False


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

        if self._putt is not None and self._stopped_dead(self._putt, seen, t):
            start = self._putt.path[0]
            logger.info(
                "no putt: a ball reached the ramp at (%.0f, %.0f) at speed and never moved on, a false "
                "detection beside a hidden ball", start.x, start.y,
            )  # fmt: skip
            self._putt = None
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
        return _Putt(
            ball.track_id, t, lane, lane, t, t, ball.position, ball.velocity, [ball.position], returning,
            start_speed=math.hypot(ball.velocity.x, ball.velocity.y),
        )  # fmt: skip

    def _stopped_dead(self, putt: _Putt, seen: list[TrackedBall], t: float) -> bool:
        """Whether the putt's ball, having reached the ramp at speed, sat still for its next few sightings.

        Asked until the answer is known. A real ball that fast rolls on for some frames, up the ramp, back or
        into the cup; one that crept onto the ramp may stop there.
        """
        if putt.rolled:
            return False
        ball = next((b for b in seen if b.track_id == putt.track_id), None)
        if ball is None:
            return False
        start = putt.path[0]
        if math.hypot(ball.position.x - start.x, ball.position.y - start.y) > _STILL_PX:
            putt.rolled = True
            return False
        putt.still_sightings += 1
        if putt.still_sightings < _STILL_SIGHTINGS:
            return False
        putt.rolled = True  # settled either way: a creeping ball may rest where it arrived
        return putt.start_speed * (t - putt.start_time) >= _STOPPED_DEAD_PX

    def _follow(self, putt: _Putt, seen: list[TrackedBall], t: float) -> PuttEvent | None:
        ball = next((b for b in seen if b.track_id == putt.track_id), None)
        if ball is not None and not self._lost_at_cup(putt, t):
            self._note_lanes_crossed(putt, putt.path[-1], ball.position)
            self._note_unseen_stretch(putt, putt.path[-1], ball.position)
        else:
            ball = self._adopt(putt, seen)  # no stretch: nothing says the ball went straight to it
        if ball is not None:
            event = self._step(putt, ball, t)
            if event is not None:
                return event
        waited = t - max(putt.last_ramp_time, putt.last_seen_time)
        if waited > self._config.exit_timeout or t - putt.start_time > self._config.putt_timeout:
            return self._timeout(putt, t)
        return None

    def _adopt(self, putt: _Putt, seen: list[TrackedBall]) -> TrackedBall | None:
        """A ball first seen after the putt's ball vanished, where that ball goes next: it is that ball."""
        for ball in seen:
            fresh = ball.first_seen > putt.last_seen_time and ball.track_id not in putt.returning_before
            if fresh and self._place(ball.position) in ("HOLE", "CATCH", "RETURN"):
                putt.track_id = ball.track_id
                return ball
        return None

    def _place(self, p: Point) -> Place:
        """The region P is in; in none, the catch, cup or return track within the margin, nearest first."""
        if self._region_of(p, _HOLE_FAMILY):
            return "HOLE"
        if self._cal.contains(Region.RETURN_TRACK, p):
            return "RETURN"
        if self._cal.contains(Region.CATCH, p):
            return "CATCH"
        if self._region_of(p, _RAMP_FAMILY):
            return "RAMP"
        if self._cal.contains(Region.MAT, p) or self._cal.contains(Region.LEFT_OF_MAT, p):
            return "MAT"
        near: list[tuple[float, Place]] = [
            (self._cal.distance(Region.HOLE, p), "HOLE"),
            (self._cal.distance(Region.RETURN_TRACK, p), "RETURN"),
            (self._cal.distance(Region.CATCH, p), "CATCH"),
        ]
        distance, place = max(near)
        return place if distance >= -self._config.region_margin else "NONE"

    def _step(self, putt: _Putt, ball: TrackedBall, t: float) -> PuttEvent | None:
        p, last = ball.position, putt.path[-1]
        dropped = self._lost_at_cup(putt, t)
        putt.path.append(p)
        putt.last_seen_time = t
        place = self._place(p)
        if dropped and place in ("CATCH", "RETURN"):
            # Lost from sight at the cup, it dropped in; out of the cup it can only come back along the
            # return track, whose start may touch the catch.
            putt.entered_hole = True
            putt.quadrant = putt.quadrant or self._cal.quadrant(last) or self._quadrant_by_angle(last)
            place = "RETURN"
        if place == "HOLE":
            putt.entered_hole = True
            if putt.quadrant is None:
                putt.quadrant = self._cal.quadrant(p) or self._quadrant_by_angle(p)
            putt.last_ramp_time = t
        elif place == "RETURN":
            return self._on_return_track(putt, t)
        elif place == "CATCH":
            putt.touched_catch = True
        elif place == "RAMP":
            if putt.entered_hole and self._cup_distance(p) < -self._config.region_margin:
                putt.entered_hole, putt.quadrant, putt.rolled_over_cup = False, None, True
            self._on_ramp(putt, ball, t)
        elif place == "MAT" and t - putt.start_time > self._config.return_delay:
            self._last_on_mat[putt.track_id] = t
            return self._finish(putt, "RETURN", t)
        return None

    def _on_ramp(self, putt: _Putt, ball: TrackedBall, t: float) -> None:
        p = ball.position
        putt.last_ramp_time = t
        putt.last_ramp_point, putt.last_ramp_velocity = p, ball.velocity
        lane = self._cal.lane(p)
        # The exit lane is where the ball left the ramp, not where it rolls after the catch or cup.
        if lane in ("LEFT", "CENTER", "RIGHT") and not self._past_the_ramp(putt):
            putt.exit_lane = lane

    def _note_lanes_crossed(self, putt: _Putt, a: Point, b: Point) -> None:
        """The exit lane is the last band the ball crossed before the cup, catch or mat, also between frames.

        A fast ball moves 5-15 px a frame, more than the width of a band's corner by the cup: the frames alone
        would make the answer depend on where the shutter happened to catch it.
        """
        if self._past_the_ramp(putt):
            return
        steps = int(math.hypot(b.x - a.x, b.y - a.y) / _LANE_STEP_PX)
        for i in range(1, steps):
            q = Point(a.x + (b.x - a.x) * i / steps, a.y + (b.y - a.y) * i / steps)
            if self._region_of(q, _LANE_ENDS):
                return
            lane = self._cal.lane(q)
            if lane in ("LEFT", "CENTER", "RIGHT"):
                putt.exit_lane = lane

    @staticmethod
    def _past_the_ramp(putt: _Putt) -> bool:
        """Whether the ball has reached the cup or the catch, after which its exit lane is settled."""
        return putt.touched_catch or putt.entered_hole or putt.rolled_over_cup

    def _note_unseen_stretch(self, putt: _Putt, a: Point, b: Point) -> None:
        """The ball went straight from A to B while unseen: it touched the catch if that line does.

        Not the cup: a line over its edge is no drop, and its quadrant is the first one the ball is seen in.
        """
        steps = int(math.hypot(b.x - a.x, b.y - a.y) / _STEP_PX)
        for i in range(1, steps):
            q = Point(a.x + (b.x - a.x) * i / steps, a.y + (b.y - a.y) * i / steps)
            if self._cal.contains(Region.CATCH, q) and not self._region_of(q, _HOLE_FAMILY):
                putt.touched_catch = True
                return

    def _on_return_track(self, putt: _Putt, t: float) -> PuttEvent:
        if putt.touched_catch:
            return self._finish(putt, "CATCH", t)
        if putt.entered_hole:
            return self._finish(putt, "HOLE", t)
        # Seen in neither: it went where it was heading when last seen on the ramp.
        into, at = self._heading(putt.last_ramp_point, putt.last_ramp_velocity)
        if into == "CATCH":
            putt.touched_catch = True
            return self._finish(putt, "CATCH", t)
        putt.quadrant = self._cal.quadrant(at) or self._quadrant_by_angle(at)
        return self._finish(putt, "HOLE", t)

    def _heading(self, p: Point, velocity: Point) -> tuple[Literal["HOLE", "CATCH"], Point]:
        """Whether a ball rolling on from P at VELOCITY meets the cup or the catch first, and where."""
        speed = math.hypot(velocity.x, velocity.y)
        if speed > 0:
            ux, uy = velocity.x / speed, velocity.y / speed
            x1, y1, x2, y2 = self._cal.bounds()
            for i in range(int(math.hypot(x2 - x1, y2 - y1) / _STEP_PX)):
                q = Point(p.x + ux * i * _STEP_PX, p.y + uy * i * _STEP_PX)
                if self._region_of(q, _HOLE_FAMILY):
                    return "HOLE", q
                if self._cal.contains(Region.CATCH, q):
                    return "CATCH", q
        # Rolling toward neither (or not at all): the nearer of the two.
        if self._cal.distance(Region.HOLE, p) >= self._cal.distance(Region.CATCH, p):
            return "HOLE", p
        return "CATCH", p

    def _lost_at_cup(self, putt: _Putt, t: float) -> bool:
        """Whether the ball has been out of sight for a while since it was last seen in or at the cup."""
        near_cup = self._cup_distance(putt.path[-1]) >= -self._config.region_margin
        return near_cup and t - putt.last_seen_time > _DROPPED_AFTER

    def _cup_distance(self, p: Point) -> float:
        """Pixels from P to the cup's edge (its outline or quadrants, whichever reaches further)."""
        return max(self._cal.distance(region, p) for region in _HOLE_FAMILY)

    def _timeout(self, putt: _Putt, t: float) -> PuttEvent:
        if putt.touched_catch:
            return self._finish(putt, "CATCH", t)
        if putt.entered_hole or self._lost_at_cup(putt, t):
            return self._finish(putt, "HOLE", t)
        return self._finish(putt, "TIMEOUT", t)

    def _interrupted(self, putt: _Putt, t: float) -> PuttEvent:
        # A ball in the cup or the catch has its answer; only one still on the ramp is a quick putt.
        if putt.entered_hole or putt.touched_catch or self._lost_at_cup(putt, t):
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
