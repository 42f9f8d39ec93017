"""The tracker's two thresholds: a weak sighting carries on a ball already followed and starts nothing."""

from __future__ import annotations

from daemon.models import BallObservation, Box, Detection, Detections
from daemon.vision.tracker import BallTracker, TrackerConfig

FPS = 30.0
CONFIG = TrackerConfig(max_gap=0.5, start_confidence=0.45)


def seen(x: float, y: float, confidence: float) -> Detection:
    return Detection(Box(x - 4, y - 4, x + 4, y + 4), confidence)


def feed(tracker: BallTracker, frames: list[list[Detection]]) -> list[BallObservation]:
    return [tracker.update(Detections(i, i / FPS, tuple(items))) for i, items in enumerate(frames)]


def test_a_ball_seen_weakly_for_longer_than_the_gap_keeps_its_track() -> None:
    # A small far ball rolls on for 0.8 s at 0.30-0.40, then is seen clearly again: one ball throughout.
    confidences = [0.9] * 10 + [0.3, 0.4] * 12 + [0.9] * 10
    frames = [[seen(100.0, 300.0 - 3 * i, c)] for i, c in enumerate(confidences)]
    observations = feed(BallTracker(CONFIG), frames)
    ids = {ball.track_id for obs in observations for ball in obs.balls}
    assert ids == {1}
    assert all(obs.balls[0].box is not None for obs in observations)  # every weak sighting was used


def test_without_the_keep_threshold_the_same_ball_loses_its_track() -> None:
    confidences = [0.9] * 10 + [0.3, 0.4] * 12 + [0.9] * 10
    frames = [
        [d for d in [seen(100.0, 300.0 - 3 * i, c)] if d.confidence >= 0.45]
        for i, c in enumerate(confidences)
    ]
    observations = feed(BallTracker(CONFIG), frames)
    assert {ball.track_id for obs in observations for ball in obs.balls} == {1, 2}


def test_weak_sightings_alone_start_no_ball() -> None:
    frames = [[seen(200.0, 200.0, 0.4), seen(50.0, 60.0, 0.2)] for _ in range(30)]
    assert all(obs.balls == () for obs in feed(BallTracker(CONFIG), frames))


def test_a_confident_sighting_wins_a_track_over_a_nearer_weak_one() -> None:
    tracker = BallTracker(CONFIG)
    feed(tracker, [[seen(100.0, 100.0, 0.9)]])
    # The weak one is nearer the ball's last place, the confident one still inside its gate.
    obs = tracker.update(Detections(1, 1 / FPS, (seen(103.0, 100.0, 0.3), seen(120.0, 100.0, 0.8))))
    assert len(obs.balls) == 1
    assert obs.balls[0].track_id == 1
    assert obs.balls[0].position.x == 120.0
