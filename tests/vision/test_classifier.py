"""Tracking and classification on scripted ball paths over a real Proof of Putt calibration (1920x1080)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from daemon.models import Box, Detection, Detections, Point, PuttEvent
from daemon.vision.calibration import CLICKED, Calibration, load_calibration
from daemon.vision.classifier import ClassifierConfig, PuttClassifier
from daemon.vision.tracker import BallTracker, TrackerConfig
from tests.conftest import REAL_FILES

FPS = 30.0
CAL = load_calibration(REAL_FILES[0])


@dataclass(frozen=True)
class Leg:
    """A ball moving in a straight line from start to end over seconds (end None: resting at start)."""

    start: tuple[float, float]
    end: tuple[float, float] | None
    seconds: float


def path(legs: Sequence[Leg | None]) -> list[tuple[float, float] | None]:
    """Per-frame ball centres; a None leg item is one frame with the ball unseen."""
    out: list[tuple[float, float] | None] = []
    for leg in legs:
        if leg is None:
            out.append(None)
            continue
        n = max(1, round(leg.seconds * FPS))
        end = leg.end or leg.start
        for i in range(n):
            f = i / n
            x = leg.start[0] + (end[0] - leg.start[0]) * f
            out.append((x, leg.start[1] + (end[1] - leg.start[1]) * f))
    return out


def hidden(seconds: float) -> list[None]:
    return [None] * round(seconds * FPS)


def run(
    *balls: Iterable[tuple[float, float] | None], tail: float = 5.0, calibration: Calibration = CAL
) -> list[PuttEvent]:
    """Feed per-frame centres of balls through tracker and classifier; flush after `tail` idle seconds."""
    tracks = [list(b) for b in balls]
    frames = max(len(t) for t in tracks) + round(tail * FPS)
    tracker = BallTracker(TrackerConfig())
    classifier = PuttClassifier(calibration, ClassifierConfig())
    events: list[PuttEvent] = []
    for i in range(frames):
        t = 1000.0 + i / FPS
        items = []
        for track in tracks:
            centre = track[i] if i < len(track) else None
            if centre is not None:
                box = Box(centre[0] - 10, centre[1] - 10, centre[0] + 10, centre[1] + 10)
                items.append(Detection(box, 0.9))
        events += classifier.update(tracker.update(Detections(i, t, tuple(items))))
    return events + classifier.flush(1000.0 + frames / FPS)


ON_MAT = (600.0, 500.0)
RAMP_CENTER = (800.0, 500.0)
BEFORE_HOLE = (860.0, 556.0)
IN_HOLE_LOW = (895.0, 556.0)
RETURN = (830.0, 745.0)


def make_path() -> list[tuple[float, float] | None]:
    return path(
        [
            Leg(ON_MAT, None, 2.0),
            Leg(ON_MAT, RAMP_CENTER, 0.4),
            Leg(RAMP_CENTER, BEFORE_HOLE, 0.3),
            Leg(BEFORE_HOLE, IN_HOLE_LOW, 0.2),
            *hidden(1.0),
            Leg(RETURN, (770.0, 740.0), 0.5),
            Leg((740.0, 680.0), (700.0, 600.0), 0.5),
        ]
    )


def test_make_through_the_center_lane_into_the_low_quadrant() -> None:
    events = run(make_path())
    assert [e.detail for e in events] == ["MAKE - HOLE: LOW - CENTER"]
    assert events[0].outcome == "MAKE"
    assert events[0].entry_lane == "CENTER"
    assert events[0].hole_quadrant == "LOW"


def test_make_whose_return_is_never_seen_is_still_a_make() -> None:
    ball = path([Leg(ON_MAT, None, 1.0), Leg(ON_MAT, RAMP_CENTER, 0.4), Leg(RAMP_CENTER, IN_HOLE_LOW, 0.4)])
    events = run(ball)
    assert [e.detail for e in events] == ["MAKE - HOLE: LOW - CENTER"]


def test_catch_then_return_is_a_miss_with_entry_and_exit_lanes() -> None:
    ball = path(
        [
            Leg((600.0, 380.0), None, 1.0),
            Leg((600.0, 380.0), (800.0, 380.0), 0.4),  # LEFT lane
            Leg((800.0, 380.0), (950.0, 400.0), 0.3),
            Leg((1000.0, 420.0), (1005.0, 690.0), 0.6),  # in the catch
            Leg((960.0, 735.0), RETURN, 0.5),  # down the ramp corner to the return track
        ]
    )
    events = run(ball)
    assert [e.detail for e in events] == ["MISS - CATCH: LEFT - LEFT"]


def test_the_exit_lane_is_the_band_crossed_between_two_frames_before_the_catch() -> None:
    # Seen last at (950, 508), just inside LEFT, then next in the catch at (985, 530): on the way it crossed
    # the corner of CENTER (the bands slant, LEFT ends at y 519 by the catch), so it left the ramp by CENTER.
    last_on_ramp, in_catch = (950.0, 508.0), (985.0, 530.0)
    assert CAL.lane(Point(*last_on_ramp)) == "LEFT"
    assert CAL.lane(Point(967.0, 521.0)) == "CENTER"
    ball = path(
        [
            Leg((600.0, 380.0), None, 1.0),
            Leg((600.0, 380.0), (800.0, 380.0), 0.4),
            Leg((800.0, 380.0), last_on_ramp, 0.3),
            Leg(last_on_ramp, None, 1 / FPS),
            Leg(in_catch, (1005.0, 690.0), 0.6),
            Leg((960.0, 735.0), RETURN, 0.5),
        ]
    )
    assert [e.detail for e in run(ball)] == ["MISS - CATCH: LEFT - CENTER"]


def test_rolling_back_down_the_ramp_is_a_return_miss() -> None:
    ball = path(
        [
            Leg((600.0, 650.0), None, 1.0),
            Leg((600.0, 650.0), (790.0, 660.0), 0.4),  # RIGHT lane
            Leg((790.0, 660.0), (830.0, 560.0), 0.4),  # drifts up into CENTER
            Leg((830.0, 560.0), (650.0, 560.0), 0.6),  # back onto the mat
        ]
    )
    assert [e.detail for e in run(ball)] == ["MISS - RETURN: RIGHT - CENTER"]


def test_ball_resting_on_the_ramp_times_out() -> None:
    ball = path([Leg(ON_MAT, None, 1.0), Leg(ON_MAT, RAMP_CENTER, 0.4), Leg(RAMP_CENTER, None, 12.0)])
    events = run(ball, tail=0.0)
    assert [e.detail for e in events] == ["MISS - TIMEOUT: CENTER"]
    assert events[0].time - events[0].start_time < 8.5


def test_ball_that_leaves_view_times_out() -> None:
    off_view = (810.0, 300.0)
    ball = path([Leg(ON_MAT, None, 1.0), Leg(ON_MAT, RAMP_CENTER, 0.4), Leg(RAMP_CENTER, off_view, 0.2)])
    events = run(ball)
    assert [e.detail for e in events] == ["MISS - TIMEOUT: CENTER"]


def test_second_putt_while_the_first_ball_is_on_the_ramp_is_a_quick_putt() -> None:
    slow = (840.0, 520.0)
    first = path([Leg(ON_MAT, None, 1.0), Leg(ON_MAT, RAMP_CENTER, 0.4), Leg(RAMP_CENTER, slow, 1.5)])
    a, b = (600.0, 650.0), (790.0, 660.0)
    second = path([Leg(a, None, 1.5), Leg(a, b, 0.4), Leg(b, None, 0.1)])
    events = run(first, second, tail=10.0)
    assert [e.detail for e in events] == ["MISS - QUICK PUTT", "MISS - TIMEOUT: RIGHT"]


def test_resting_balls_on_the_mat_and_in_the_ignore_area_do_not_block_or_fake_putts() -> None:
    resting_on_mat = path([Leg((500.0, 300.0), None, 8.0)])
    resting_ignored = path([Leg((400.0, 800.0), None, 8.0)])
    events = run(resting_on_mat, make_path(), resting_ignored)
    assert [e.detail for e in events] == ["MAKE - HOLE: LOW - CENTER"]


def test_ball_hidden_by_the_putter_for_under_half_a_second_keeps_its_track() -> None:
    ball = path(
        [
            Leg(ON_MAT, None, 1.0),
            Leg(ON_MAT, (700.0, 500.0), 0.3),
            *hidden(0.4),
            Leg((740.0, 500.0), RAMP_CENTER, 0.2),
            Leg(RAMP_CENTER, IN_HOLE_LOW, 0.4),
        ]
    )
    assert [e.detail for e in run(ball)] == ["MAKE - HOLE: LOW - CENTER"]


def test_a_false_ball_beside_a_ball_hidden_on_the_mat_is_no_putt(caplog: pytest.LogCaptureFixture) -> None:
    # A putter over a ball resting by the ramp hides it, and its head, 35 px away on the ramp, is taken for
    # a ball for three seconds: the ball's track jumps there. Then the putter lifts and the ball is putted.
    by_the_ramp, putter_head = (735.0, 500.0), (770.0, 500.0)
    ball = path(
        [
            Leg(by_the_ramp, None, 2.0),
            *hidden(3.0),
            Leg(by_the_ramp, None, 0.5),
            Leg(by_the_ramp, RAMP_CENTER, 0.2),
            Leg(RAMP_CENTER, BEFORE_HOLE, 0.3),
            Leg(BEFORE_HOLE, IN_HOLE_LOW, 0.2),
        ]
    )
    head = [None] * round(2.0 * FPS) + path([Leg(putter_head, None, 3.0)])
    with caplog.at_level(logging.INFO, logger="daemon.vision.classifier"):
        events = run(ball, head)
    assert [e.detail for e in events] == ["MAKE - HOLE: LOW - CENTER"]
    assert "no putt: a ball reached the ramp at (770, 500) at speed and never moved on" in caplog.text


def test_a_ball_that_creeps_onto_the_ramp_and_stops_there_is_a_putt() -> None:
    # 20 px/s over the mat's edge, then at rest just inside the ramp: no false ball sits still that slowly.
    just_inside = (750.5, 500.0)
    ball = path([Leg(ON_MAT, None, 1.0), Leg(ON_MAT, just_inside, 7.5), Leg(just_inside, None, 10.0)])
    assert [e.detail for e in run(ball)] == ["MISS - TIMEOUT: CENTER"]


def test_no_putt_from_a_ball_placed_directly_on_the_ramp() -> None:
    ball = path([Leg(RAMP_CENTER, None, 3.0)])
    assert run(ball) == []


def test_same_frames_give_the_same_events() -> None:
    assert run(make_path()) == run(make_path())


def test_tracker_keeps_ids_of_two_crossing_balls_apart() -> None:
    tracker = BallTracker(TrackerConfig())
    ids = []
    for i in range(30):
        t = i / FPS
        a = (100.0 + 10 * i, 100.0)
        b = (400.0 - 10 * i, 160.0)
        dets = tuple(Detection(Box(x - 8, y - 8, x + 8, y + 8), 0.9) for x, y in (a, b))
        obs = tracker.update(Detections(i, t, dets))
        ids.append(sorted((round(ball.position.y), ball.track_id) for ball in obs.balls))
    assert all(frame == ids[0] for frame in ids)
    assert np.unique([tid for frame in ids for _, tid in frame]).size == 2


# The ball's way back: the return track, then down onto the mat (none of it seen by the old rules' track).
BACK = (Leg(RETURN, (780.0, 740.0), 0.5), Leg((740.0, 680.0), (700.0, 600.0), 0.5))


def test_a_catch_seen_in_one_frame_between_long_gaps_is_a_catch() -> None:
    # Last seen rolling at the cup, lost, one sighting in the catch, lost again: the catch decides.
    ball = path(
        [
            Leg(ON_MAT, None, 1.0),
            Leg(ON_MAT, RAMP_CENTER, 0.4),
            Leg(RAMP_CENTER, (870.0, 556.0), 0.2),
            *hidden(0.6),
            Leg((1005.0, 600.0), None, 1 / FPS),
            *hidden(0.6),
            *BACK,
        ]
    )
    assert [e.detail for e in run(ball)] == ["MISS - CATCH: CENTER - CENTER"]


def test_a_ball_lost_past_the_cup_and_seen_again_on_the_return_track_went_through_the_catch() -> None:
    ball = path(
        [
            Leg((600.0, 380.0), None, 1.0),
            Leg((600.0, 380.0), (800.0, 400.0), 0.4),  # LEFT lane
            Leg((800.0, 400.0), (940.0, 430.0), 0.3),  # wide of the cup, toward the catch
            *hidden(1.0),
            *BACK,
        ]
    )
    assert [e.detail for e in run(ball)] == ["MISS - CATCH: LEFT - LEFT"]


def test_a_ball_lost_rolling_into_the_cup_and_seen_again_on_the_return_track_is_a_make() -> None:
    ball = path(
        [
            Leg(ON_MAT, None, 1.0),
            Leg(ON_MAT, RAMP_CENTER, 0.4),
            Leg(RAMP_CENTER, (880.0, 556.0), 0.3),  # last seen just short of the cup's lip
            *hidden(1.0),
            *BACK,
        ]
    )
    assert [e.detail for e in run(ball)] == ["MAKE - HOLE: LOW - CENTER"]


def test_a_ball_seen_in_the_cup_and_then_on_the_ramp_past_it_rolled_over_the_cup() -> None:
    # Too fast to drop: in the cup for a few frames, then on the ramp beyond it, then lost in a dark catch
    # until it shows up on the return track. Its exit lane is the one it had when it reached the cup.
    past_the_cup = (964.0, 485.0)
    assert CAL.lane(Point(*past_the_cup)) == "LEFT"
    ball = path(
        [
            Leg(ON_MAT, None, 1.0),
            Leg(ON_MAT, (800.0, 520.0), 0.4),
            Leg((800.0, 520.0), (924.0, 545.0), 0.3),  # CENTER lane, into the cup
            Leg((930.0, 530.0), past_the_cup, 0.1),
            *hidden(0.8),
            *BACK,
        ]
    )
    assert [e.detail for e in run(ball)] == ["MISS - CATCH: CENTER - CENTER"]


def test_a_ball_seen_just_past_the_cup_edge_may_still_have_dropped() -> None:
    # Within the margin a calibration may be off by, a sighting past the cup's edge is still at the cup.
    ball = path(
        [
            Leg(ON_MAT, None, 1.0),
            Leg(ON_MAT, RAMP_CENTER, 0.4),
            Leg(RAMP_CENTER, IN_HOLE_LOW, 0.4),
            # On to 3 px past the edge as clicked, rolling toward the catch.
            Leg((940.0, 590.0), (948.0, 590.0), 3 / FPS),
            *hidden(1.0),
            *BACK,
        ]
    )
    assert [e.detail for e in run(ball)] == ["MAKE - HOLE: LOW - CENTER"]


def test_a_ball_lost_at_the_cup_dropped_in_even_when_next_seen_in_the_catch() -> None:
    ball = path(
        [
            Leg(ON_MAT, None, 1.0),
            Leg(ON_MAT, RAMP_CENTER, 0.4),
            Leg(RAMP_CENTER, (896.0, 556.0), 0.4),  # 3 px short of the cup's edge, then gone
            *hidden(0.8),
            Leg((975.0, 720.0), None, 0.1),  # where the way back out of the cup passes the catch
            *BACK,
        ]
    )
    assert [e.detail for e in run(ball)] == ["MAKE - HOLE: LOW - CENTER"]


def nudged(dx: int, dy: int) -> Calibration:
    """The real calibration as if every region had been clicked DX, DY pixels off."""
    clicked = {r: tuple((x + dx, y + dy) for x, y in CAL.polygons[r]) for r in CLICKED}
    return Calibration.from_clicked(clicked)


NUDGES = [(6, 0), (4, 4), (0, 6), (-4, 4), (-6, 0), (-4, -4), (0, -6), (4, -4)]


@pytest.mark.parametrize(("dx", "dy"), NUDGES)
def test_a_calibration_clicked_6_px_off_keeps_every_outcome(dx: int, dy: int) -> None:
    catch_at_its_edge = path(
        [
            Leg((600.0, 450.0), None, 1.0),
            Leg((600.0, 450.0), (800.0, 450.0), 0.4),
            Leg((800.0, 450.0), (960.0, 460.0), 0.25),
            Leg((977.0, 470.0), None, 1 / FPS),  # once, 4 px inside the catch's edge
            *hidden(0.6),
            *BACK,
        ]
    )
    rolls_back = path(
        [
            Leg((600.0, 650.0), None, 1.0),
            Leg((600.0, 650.0), (790.0, 660.0), 0.4),
            Leg((790.0, 660.0), (830.0, 560.0), 0.4),
            Leg((830.0, 560.0), (650.0, 560.0), 0.6),
        ]
    )
    stops = path([Leg(ON_MAT, None, 1.0), Leg(ON_MAT, RAMP_CENTER, 0.4), Leg(RAMP_CENTER, None, 12.0)])
    putts = [make_path(), catch_at_its_edge, rolls_back, stops]
    truth = [[e.kind for e in run(ball)] for ball in putts]
    assert truth == [["HOLE"], ["CATCH"], ["RETURN"], ["TIMEOUT"]]
    assert [[e.kind for e in run(ball, calibration=nudged(dx, dy))] for ball in putts] == truth
