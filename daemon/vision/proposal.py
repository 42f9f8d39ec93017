"""Automatic calibration proposal: the rig's regions guessed from one still frame.

Classical OpenCV only. The cup is the anchor: a dark disc found by its circle (HoughCircles) and measured
from its dark blob. The rig's known proportions (`LAYOUT`, in rig units) are then fitted around it: every
rotation and scale of the layout that keeps the cup in place is scored by how strongly the image's colour
edges run along the layout's region outlines, and the best pose is refined. The result is a starting point
for a person to correct, built exactly as clicked regions are (`Calibration.from_clicked`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from daemon.models import Image
from daemon.vision.calibration import Calibration, Polygon, Region
from daemon.vision.rig_layout import LAYOUT, Quad

Points = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Circle:
    """A circle in frame pixels."""

    x: float
    y: float
    radius: float


@dataclass(frozen=True, slots=True)
class RigPose:
    """Where the rig lies in the frame: rotation (degrees, counter-clockwise), scale and the rig centre."""

    angle: float
    scale: float
    centre: tuple[float, float]

    def to_image(self, points: Points) -> Points:
        """Rig units (N x 2) to frame pixels."""
        half = np.array(LAYOUT.size) / 2
        mapped: Points = self.scale * (points - half) @ _rotation(self.angle).T + np.array(self.centre)
        return mapped


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposed calibration with what it was built from; score is the mean edge strength along the outlines
    (grey levels per pixel), low when the layout fits nothing."""

    calibration: Calibration
    pose: RigPose
    cup: Circle
    score: float


@dataclass(frozen=True, slots=True)
class SearchArea:
    """Where to look when the rig's place is roughly known: the cup within REACH pixels of CUP, the rig
    turned within TURN degrees of ANGLE."""

    cup: tuple[float, float]
    reach: float
    angle: float
    turn: float


def expected_angle(calibration: Calibration) -> float:
    """The rig's turn a calibration implies: the way from the mat's middle to the ramp's, against the
    layout's."""
    mat, ramp = (np.mean(calibration.polygons[r], axis=0) for r in (Region.MAT, Region.RAMP))
    layout_mat, layout_ramp = np.mean(LAYOUT.mat, axis=0), np.mean(LAYOUT.ramp, axis=0)
    seen = math.atan2(ramp[1] - mat[1], ramp[0] - mat[0])
    drawn = math.atan2(layout_ramp[1] - layout_mat[1], layout_ramp[0] - layout_mat[0])
    return math.degrees(seen - drawn) % 360


_ANGLE_STEP = 2.0  # degrees, coarse search
_SCALE_STEP = 1.04  # ratio between coarse scales
_CANDIDATE_CUPS = 6


def find_cups(image: Image, limit: int = _CANDIDATE_CUPS) -> list[Circle]:
    """Dark discs that may be the cup, most cup-like first, each measured from its dark blob."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    blurred = cv2.GaussianBlur(grey, (5, 5), 1.5)
    short = min(grey.shape)
    found = cv2.HoughCircles(
        blurred, cv2.HOUGH_GRADIENT, dp=1, minDist=8, param1=80, param2=14,
        minRadius=4, maxRadius=max(8, short // 8),
    )  # fmt: skip
    if found is None:
        return []
    cups = []
    measured = cv2.medianBlur(grey, 3)
    for x, y, r in found[0][: 8 * limit]:
        cup = _measure_dark_disc(measured, float(x), float(y), float(r))
        if cup is not None:
            cups.append(cup)
    cups.sort(key=lambda c: c[1])  # darkest against its surround first
    return [c for c, _ in cups[:limit]]


def _measure_dark_disc(grey: Image, x: float, y: float, r: float) -> tuple[Circle, float] | None:
    """The dark blob around (x, y): its centroid and the radius of its area, with a darkness rank (lower is
    darker against its surround). None when nothing there is darker than its surround."""
    h, w = grey.shape
    reach = int(2.5 * r) + 3
    x1, y1, x2, y2 = (
        max(0, int(x) - reach),
        max(0, int(y) - reach),
        min(w, int(x) + reach),
        min(h, int(y) + reach),
    )
    window = grey[y1:y2, x1:x2]
    yy, xx = np.mgrid[y1:y2, x1:x2]
    distance = np.hypot(xx - x, yy - y)
    inside = window[distance <= 0.6 * r]
    ring = window[(distance >= 1.5 * r) & (distance <= 2.2 * r)]
    if inside.size == 0 or ring.size == 0:
        return None
    dark, around = float(np.median(inside)), float(np.median(ring))
    if around - dark < 25:
        return None
    # Nearer the dark side than the midpoint: the cup's lip is a shade darker than the ramp around it.
    mask = (window <= dark + 0.35 * (around - dark)).astype(np.uint8)
    count, labels = cv2.connectedComponents(mask)
    label = labels[min(int(y) - y1, labels.shape[0] - 1), min(int(x) - x1, labels.shape[1] - 1)]
    if count < 2 or label == 0:
        return None
    blob = (labels == label).astype(np.uint8)
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    (_, _), enclosing = cv2.minEnclosingCircle(max(contours, key=cv2.contourArea))
    moments = cv2.moments(blob, binaryImage=True)
    area = moments["m00"]
    radius = math.sqrt(area / math.pi)
    fill = area / (math.pi * max(enclosing, 1.0) ** 2)
    if area < 20 or fill < 0.75 or not 0.6 * r <= radius <= 1.6 * r:
        return None  # a dark region that is not a disc: the catch area, a shadow, the frame's edge
    cx, cy = x1 + moments["m10"] / area, y1 + moments["m01"] / area
    # An anti-aliased or slightly blurred edge spreads the dark disc by about half a pixel.
    return Circle(cx, cy, radius - 0.5), (dark - around) * fill


class _EdgeField:
    """Per-channel image gradients, sampled across region outlines."""

    def __init__(self, image: Image) -> None:
        smooth = cv2.GaussianBlur(image, (5, 5), 1.2).astype(np.float32)
        self._gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8
        self._gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8
        self.height, self.width = image.shape[:2]

    def strength(self, points: Points, normals: Points) -> Points:
        """Mean contrast across the outline at POINTS (... x N x 2) along NORMALS (N x 2), one value per
        outline; points off the frame count 0."""
        ix, iy = np.rint(points[..., 0]).astype(int), np.rint(points[..., 1]).astype(int)
        on = (ix >= 0) & (iy >= 0) & (ix < self.width) & (iy < self.height)
        ix, iy = np.where(on, ix, 0), np.where(on, iy, 0)
        gx, gy = self._gx[iy, ix], self._gy[iy, ix]  # ... x N x 3
        across = np.abs(gx * normals[:, 0:1] + gy * normals[:, 1:2]).sum(axis=-1) * on
        mean: Points = across.mean(axis=-1)
        return mean


def _outline_samples(spacing: float = 4.0) -> tuple[Points, Points]:
    """Points along every outline of the layout with their unit normals, in rig units."""
    points, normals = [], []
    for quad in LAYOUT.outlines():
        corners = np.array(quad, dtype=np.float64)
        for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
            length = float(np.hypot(*(b - a)))
            steps = np.arange(spacing / 2, length, spacing) / length
            points.append(a + steps[:, None] * (b - a))
            direction = (b - a) / length
            normals.append(np.repeat([[-direction[1], direction[0]]], len(steps), axis=0))
    return np.concatenate(points), np.concatenate(normals)


def _pose_around(cup: Circle, angle: float, scale: float) -> RigPose:
    """The pose with the layout's cup on CUP."""
    hole = RigPose(angle, scale, (0.0, 0.0)).to_image(np.array([LAYOUT.hole_centre]))[0]
    return RigPose(angle, scale, (cup.x - float(hole[0]), cup.y - float(hole[1])))


def _rotation(angle: float) -> Points:
    a = math.radians(angle)
    turn: Points = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return turn


class _Scorer:
    """How well the layout's outlines run along the frame's edges, for one pose or a fan of scales."""

    def __init__(self, image: Image) -> None:
        self.field = _EdgeField(image)
        self.points, self._normals = _outline_samples()
        self._from_hole = self.points - np.array(LAYOUT.hole_centre)

    def score(self, pose: RigPose) -> float:
        normals = self._normals @ _rotation(pose.angle).T
        return float(self.field.strength(pose.to_image(self.points), normals))

    def scores_around(self, cup: Circle, angle: float, scales: Points) -> Points:
        """The score of every scale with the layout turned by ANGLE and its cup on CUP."""
        turn = _rotation(angle)
        offsets = self._from_hole @ turn.T
        points = np.array([cup.x, cup.y]) + scales[:, None, None] * offsets[None]
        return self.field.strength(points, self._normals @ turn.T)


def _scales(width: int, height: int) -> Points:
    """Scales from a rig a third of the frame's short side to one filling its long side."""
    low = min(width, height) / 3 / max(LAYOUT.size)
    high = max(width, height) / min(LAYOUT.size)
    count = int(math.log(high / low) / math.log(_SCALE_STEP)) + 1
    scales: Points = low * np.power(_SCALE_STEP, np.arange(count, dtype=np.float64))
    return scales


def _refine(scorer: _Scorer, pose: RigPose, best: float) -> tuple[RigPose, float]:
    """Coordinate search on angle, scale and centre with shrinking steps."""
    steps = [1.0, 0.01, 1.0]
    for _ in range(6):
        improved = True
        while improved:
            improved = False
            for trial in _neighbours(pose, steps):
                value = scorer.score(trial)
                if value > best:
                    pose, best, improved = trial, value, True
        steps = [s / 2 for s in steps]
    return pose, best


def _neighbours(pose: RigPose, steps: list[float]) -> list[RigPose]:
    angle, scale, shift = steps
    cx, cy = pose.centre
    return [
        RigPose(pose.angle + angle, pose.scale, pose.centre),
        RigPose(pose.angle - angle, pose.scale, pose.centre),
        RigPose(pose.angle, pose.scale * (1 + scale), pose.centre),
        RigPose(pose.angle, pose.scale * (1 - scale), pose.centre),
        RigPose(pose.angle, pose.scale, (cx + shift, cy)),
        RigPose(pose.angle, pose.scale, (cx - shift, cy)),
        RigPose(pose.angle, pose.scale, (cx, cy + shift)),
        RigPose(pose.angle, pose.scale, (cx, cy - shift)),
    ]


def fit_pose(
    image: Image, cups: list[Circle], near: SearchArea | None = None
) -> tuple[RigPose, Circle, float] | None:
    """The best layout pose around any of CUPS (turned as NEAR allows), with that cup and its score."""
    scorer = _Scorer(image)
    height, width = image.shape[:2]
    scales = _scales(width, height)
    angles = np.arange(0.0, 360.0, _ANGLE_STEP)
    if near is not None:
        angles = near.angle + np.arange(-near.turn, near.turn + _ANGLE_STEP / 2, _ANGLE_STEP)
    ranked: list[tuple[float, RigPose, Circle]] = []
    for cup in cups:
        for angle in angles:
            values = scorer.scores_around(cup, float(angle), scales)
            best = int(np.argmax(values))
            ranked.append((float(values[best]), _pose_around(cup, float(angle), float(scales[best])), cup))
    if not ranked:
        return None
    ranked.sort(key=lambda item: item[0], reverse=True)
    results = [(*_refine(scorer, pose, value), cup) for value, pose, cup in ranked[:4]]
    pose, value, cup = max(results, key=lambda item: item[1])
    return pose, cup, value


def regions_for(pose: RigPose, cup: Circle, width: int, height: int) -> dict[Region, Polygon]:
    """The seven clicked regions for a rig at POSE, the hole traced around the measured CUP."""

    def place(quad: Quad) -> Polygon:
        mapped = pose.to_image(np.array(quad, dtype=np.float64))
        return tuple((round(min(max(x, 0), width - 1)), round(min(max(y, 0), height - 1))) for x, y in mapped)

    hole = tuple(
        (
            round(cup.x + cup.radius * math.cos(2 * math.pi * i / 12)),
            round(cup.y + cup.radius * math.sin(2 * math.pi * i / 12)),
        )
        for i in range(12)
    )
    return {
        Region.MAT: place(LAYOUT.mat),
        Region.RAMP: place(LAYOUT.ramp),
        Region.HOLE: hole,
        Region.LEFT_OF_MAT: place(LAYOUT.left_of_mat),
        Region.CATCH: place(LAYOUT.catch),
        Region.RETURN_TRACK: place(LAYOUT.return_track),
        Region.IGNORE_AREA: place(LAYOUT.ignore_area),
    }


def propose(
    image: Image, calibrated_at: str | None = None, near: SearchArea | None = None
) -> Proposal | None:
    """A calibration proposed from one frame of the rig (only NEAR, when given), or None when no cup is
    found."""
    cups = find_cups(image)
    if near is not None:
        cups = [c for c in cups if math.hypot(c.x - near.cup[0], c.y - near.cup[1]) <= near.reach]
    fitted = fit_pose(image, cups, near)
    if fitted is None:
        return None
    pose, cup, value = fitted
    height, width = image.shape[:2]
    clicked = regions_for(pose, cup, width, height)
    calibration = Calibration.from_clicked(clicked, -1, (width, height), calibrated_at)
    return Proposal(calibration, pose, cup, value)
