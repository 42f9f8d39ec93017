"""Ball tracking stage: detections per frame in, every ball with a stable id out.

Balls are followed one by one (a ball resting on the mat keeps its own track, so it cannot hide or fake a
putt). A ball missing for up to `max_gap` seconds (a putter or a foot over it) keeps its track, moved on at
its last velocity; after that the track ends and a ball seen again starts a new one.

Detections below `start_confidence` never start a track; they only carry on one that is already followed,
and only where no confident detection does (matched in a second pass, as ByteTrack does). A small ball far
from the camera, or one in a shaded tray, dips under the threshold for a second and keeps its track instead
of losing it and the putt's outcome with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from daemon.models import BallObservation, Box, Detections, Point, TrackedBall


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How far and how long a ball may go unseen and keep its track."""

    max_gap: float = 0.5
    start_confidence: float = 0.0  # a detection below this only continues a track
    gate_px: float = 40.0  # association radius around the predicted position, before speed is added
    gate_speed_factor: float = 1.5  # extra radius per pixel the ball moved since its last sighting


@dataclass(slots=True)
class _Track:
    track_id: int
    position: Point
    velocity: Point
    last_seen: float
    first_seen: float
    box: Box | None = None

    def predict(self, t: float) -> Point:
        dt = t - self.last_seen
        return Point(self.position.x + self.velocity.x * dt, self.position.y + self.velocity.y * dt)


class BallTracker:
    """Greedy nearest-neighbour tracker with constant-velocity bridging of short gaps."""

    def __init__(self, config: TrackerConfig) -> None:
        self._config = config
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track."""
        self._tracks.clear()

    def update(self, detections: Detections) -> BallObservation:
        """Associate this frame's detections with the tracks and report every live ball."""
        t = detections.timestamp
        self._tracks = [tr for tr in self._tracks if t - tr.last_seen <= self._config.max_gap]
        confident = [d.confidence >= self._config.start_confidence for d in detections.items]
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        pairs = self._candidate_pairs(detections, t)
        for first_pass in (True, False):
            for _, ti, di in pairs:
                if confident[di] != first_pass or ti in used_tracks or di in used_dets:
                    continue
                used_tracks.add(ti)
                used_dets.add(di)
                self._observe(self._tracks[ti], detections.items[di].box, t)
        for ti, track in enumerate(self._tracks):
            if ti not in used_tracks:
                track.box = None
        for di, det in enumerate(detections.items):
            if di not in used_dets and confident[di]:
                self._tracks.append(_Track(self._next_id, det.box.center, Point(0.0, 0.0), t, t, det.box))
                self._next_id += 1
        balls = tuple(
            TrackedBall(
                tr.track_id,
                tr.position if tr.box is not None else tr.predict(t),
                tr.velocity,
                tr.box,
                tr.first_seen,
            )
            for tr in self._tracks
        )
        return BallObservation(detections.frame_index, t, balls)

    def _candidate_pairs(self, detections: Detections, t: float) -> list[tuple[float, int, int]]:
        pairs = []
        for ti, track in enumerate(self._tracks):
            predicted = track.predict(t)
            dt = t - track.last_seen
            travel = math.hypot(track.velocity.x, track.velocity.y) * dt
            gate = self._config.gate_px + self._config.gate_speed_factor * travel
            for di, det in enumerate(detections.items):
                c = det.box.center
                distance = math.hypot(c.x - predicted.x, c.y - predicted.y)
                if distance <= gate:
                    pairs.append((distance, ti, di))
        pairs.sort()
        return pairs

    @staticmethod
    def _observe(track: _Track, box: Box, t: float) -> None:
        centre = box.center
        dt = t - track.last_seen
        if dt > 0:
            vx = (centre.x - track.position.x) / dt
            vy = (centre.y - track.position.y) / dt
            # Smoothed so one jittery detection does not fling the prediction across the mat.
            track.velocity = Point(0.5 * track.velocity.x + 0.5 * vx, 0.5 * track.velocity.y + 0.5 * vy)
        track.position = centre
        track.last_seen = t
        track.box = box
