"""Calibration drift: how far the rig moved in the frame since it was calibrated.

A calibration made from a frame keeps a reference of that scene beside it (`<calibration>.scene.npz`: ORB
keypoints and descriptors inside the rig's bounds). A later frame is matched against it and a rotation, scale
and shift are fitted with RANSAC (`cv2.estimateAffinePartial2D`); the share of reference keypoints that agree
with the fit is the confidence. A calibration with no reference is checked against the automatic proposal
instead: where it finds the cup and the rig's outlines, compared with where the calibration puts them.

The verdict is `still` (moved less than the threshold), `followed` (moved, confidently, by an amount a knocked
camera can move: the regions can move with it) or `mismatch` (no confident fit, or a move no knock makes: the
calibration does not belong to this scene).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from daemon.atomicfile import write_atomic
from daemon.models import Image
from daemon.vision.calibration import CLICKED, Calibration, Region, hole_circle
from daemon.vision.proposal import SearchArea, expected_angle, propose

Matrix = tuple[tuple[float, float, float], tuple[float, float, float]]
DriftState = Literal["still", "followed", "mismatch"]
OVERHEAD_SIDE_RATIO = 0.9  # shortest to longest of the mat's opposite sides in a view the proposal reads
Method = Literal["reference", "proposal"]
IDENTITY: Matrix = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
_MARGIN = 0.08  # share of the rig's size added around its bounds when taking the reference
_FEATURES = 1500
_RATIO = 0.8  # Lowe's ratio test
_CUP_SIZE_TOLERANCE = 0.2  # a cup this much larger or smaller than the scale says is not the calibrated one
_MIN_INLIERS = 12  # fewer agreeing keypoints than this is chance, whatever their share
_NEAR_REACH = 0.25  # share of the frame's diagonal searched around the calibrated cup, with no reference
_NEAR_TURN = 20.0  # degrees searched either way of the calibrated rig's turn


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """When to look for drift, when a measured move counts as drift, and which moves can be followed."""

    interval: float = 300.0  # seconds between checks while the scene is still (0: only the first)
    threshold: float = 4.0  # pixels: largest move of the rig's bounds still counted as no move
    min_confidence: float = 0.15  # share of reference keypoints that must agree with the fit to follow it
    max_rotation: float = 10.0  # degrees: more than a knock turns a camera
    max_scale_change: float = 0.15  # a zoom beyond this is another camera position, not a knock
    max_shift: float = 0.15  # share of the frame's diagonal the rig's centre may move


@dataclass(frozen=True, slots=True)
class SceneReference:
    """ORB keypoints (N x 2 frame pixels) and descriptors (N x 32) of the calibrated scene."""

    points: npt.NDArray[np.float32]
    descriptors: npt.NDArray[np.uint8]
    frame_size: tuple[int, int]

    def save(self, path: Path) -> None:
        """Write the reference atomically."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, points=self.points, descriptors=self.descriptors, frame_size=np.array(self.frame_size)
        )
        write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> SceneReference | None:
        """The reference stored at PATH, or None when there is none (or it is unreadable)."""
        try:
            with np.load(path) as data:
                width, height = (int(v) for v in data["frame_size"])
                return cls(
                    data["points"].astype(np.float32), data["descriptors"].astype(np.uint8), (width, height)
                )
        except (OSError, KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class DriftEstimate:
    """How the rig moved from the calibration to a frame: MATRIX maps calibrated pixels to current ones."""

    matrix: Matrix
    shift: tuple[float, float]  # pixels the rig's centre moved
    rotation: float  # degrees, clockwise as the image is seen (y down)
    scale: float
    displacement: float  # pixels the farthest corner of the rig's bounds moved
    confidence: float  # 0..1
    method: Method


@dataclass(frozen=True, slots=True)
class DriftVerdict:
    """What an estimate means for counting."""

    state: DriftState
    estimate: DriftEstimate | None  # None when nothing could be fitted

    def describe(self) -> str:
        """One line for the log and the status outlets."""
        e = self.estimate
        if e is None:
            return f"{self.state}: the calibrated rig was not found in the frame"
        return (
            f"{self.state}: shift {e.shift[0]:+.1f},{e.shift[1]:+.1f} px, rotation {e.rotation:+.2f} deg, "
            f"scale {e.scale:.3f}, confidence {e.confidence:.2f} ({e.method})"
        )


def reference_path(calibration_file: Path) -> Path:
    """Where the scene reference of CALIBRATION_FILE lives."""
    return calibration_file.with_suffix(".scene.npz")


def _rig_mask(calibration: Calibration, width: int, height: int) -> Image:
    x1, y1, x2, y2 = calibration.bounds()
    pad_x, pad_y = _MARGIN * (x2 - x1), _MARGIN * (y2 - y1)
    mask = np.zeros((height, width), np.uint8)
    top_left = (max(0, int(x1 - pad_x)), max(0, int(y1 - pad_y)))
    cv2.rectangle(
        mask, top_left, (min(width - 1, int(x2 + pad_x)), min(height - 1, int(y2 + pad_y))), 255, -1
    )
    return mask


def _features(
    image: Image, mask: Image | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8] | None]:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    # A light blur keeps the keypoints on the rig's structure rather than on one frame's sensor noise.
    grey = cv2.GaussianBlur(grey, (3, 3), 0)
    orb = cv2.ORB.create(nfeatures=_FEATURES, fastThreshold=10)
    keypoints, descriptors = orb.detectAndCompute(grey, mask)
    points = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)
    return points, descriptors


def make_reference(image: Image, calibration: Calibration) -> SceneReference:
    """The reference of the scene in IMAGE, inside the rig's bounds."""
    height, width = image.shape[:2]
    points, descriptors = _features(image, _rig_mask(calibration.scaled(width, height), width, height))
    if descriptors is None:
        descriptors = np.zeros((0, 32), np.uint8)
    return SceneReference(points, descriptors, (width, height))


def write_reference(image: Image, calibration: Calibration, calibration_file: Path) -> Path:
    """Store the reference of IMAGE beside CALIBRATION_FILE (the calibration tools call this); its path."""
    path = reference_path(calibration_file)
    make_reference(image, calibration).save(path)
    return path


def _estimate(
    matrix: npt.NDArray[np.float64], calibration: Calibration, confidence: float, method: Method
) -> DriftEstimate:
    x1, y1, x2, y2 = calibration.bounds()
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    centre, moved_centre = corners.mean(axis=0), moved.mean(axis=0)
    rows = tuple(tuple(float(v) for v in row) for row in matrix)
    return DriftEstimate(
        matrix=(rows[0], rows[1]),  # type: ignore[arg-type]  # two rows of three, by construction
        shift=(float(moved_centre[0] - centre[0]), float(moved_centre[1] - centre[1])),
        rotation=math.degrees(math.atan2(matrix[1, 0], matrix[0, 0])),
        scale=float(math.hypot(matrix[0, 0], matrix[1, 0])),
        displacement=float(np.max(np.linalg.norm(moved - corners, axis=1))),
        confidence=confidence,
        method=method,
    )


def estimate_from_reference(
    reference: SceneReference, image: Image, calibration: Calibration
) -> DriftEstimate | None:
    """Match IMAGE against the stored reference; None when too little matches to fit anything."""
    height, width = image.shape[:2]
    calibration = calibration.scaled(width, height)
    ref_points = reference.points * np.array(
        [width / reference.frame_size[0], height / reference.frame_size[1]], np.float32
    )
    points, descriptors = _features(image, None)
    if descriptors is None or len(reference.descriptors) < 8 or len(descriptors) < 8:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(reference.descriptors, descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < _RATIO * p[1].distance]
    if len(good) < 6:
        return None
    source = ref_points[[m.queryIdx for m in good]]
    target = points[[m.trainIdx for m in good]]
    matrix, inliers = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=3.0, maxIters=4000, confidence=0.995
    )
    if matrix is None or inliers is None:
        return None
    agreeing = int(inliers.sum())
    confidence = min(1.0, agreeing / len(reference.points)) if agreeing >= _MIN_INLIERS else 0.0
    return _estimate(matrix, calibration, confidence, "reference")


def estimate_from_proposal(image: Image, calibration: Calibration) -> DriftEstimate | None:
    """Compare the calibration with what the automatic proposal finds in IMAGE; None when it finds no rig.

    The corners of the mat, ramp, catch and return track are paired with the proposal's nearest ones and the
    cup centres with each other; the confidence is how well the moved regions then cover the proposal's, and
    how well the cup's measured size agrees with the fitted scale (another rig's cup is another size)."""
    height, width = image.shape[:2]
    calibration = calibration.scaled(width, height)
    hole_x, hole_y, hole_radius = hole_circle(calibration.polygons[Region.HOLE])
    # Only as far as a knock moves a camera: the search is then a fraction of a whole-frame proposal's.
    near = SearchArea(
        (hole_x, hole_y), _NEAR_REACH * math.hypot(width, height), expected_angle(calibration), _NEAR_TURN
    )
    proposal = propose(image, near=near)
    if proposal is None:
        return None
    found = proposal.calibration
    source, target = [[hole_x, hole_y]], [[proposal.cup.x, proposal.cup.y]]
    shift = np.array(target[0]) - np.array(source[0])
    for region in (Region.MAT, Region.RAMP, Region.CATCH, Region.RETURN_TRACK):
        theirs = np.array(found.polygons[region], np.float64)
        for corner in np.array(calibration.polygons[region], np.float64):
            nearest = theirs[np.argmin(np.linalg.norm(theirs - (corner + shift), axis=1))]
            source.append(list(corner))
            target.append(list(nearest))
    matrix, _ = cv2.estimateAffinePartial2D(
        np.array(source, np.float32),
        np.array(target, np.float32),
        method=cv2.RANSAC,
        ransacReprojThreshold=8.0,
    )
    if matrix is None:
        return None
    moved = transform_calibration(calibration, _as_matrix(matrix))
    cover = min(_overlap(moved, found, r, width, height) for r in (Region.MAT, Region.RAMP, Region.HOLE))
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    size_error = abs(proposal.cup.radius / max(hole_radius * scale, 1.0) - 1)
    agreement = max(0.0, 1 - size_error / _CUP_SIZE_TOLERANCE)
    return _estimate(matrix, calibration, min(cover, agreement), "proposal")


def _as_matrix(matrix: npt.NDArray[np.float64]) -> Matrix:
    a, b = (tuple(float(v) for v in row) for row in matrix)
    return (a[0], a[1], a[2]), (b[0], b[1], b[2])


def _overlap(first: Calibration, second: Calibration, region: Region, width: int, height: int) -> float:
    a, b = np.zeros((height, width), np.uint8), np.zeros((height, width), np.uint8)
    cv2.fillPoly(a, [np.array(first.polygons[region], np.int32)], 1)
    cv2.fillPoly(b, [np.array(second.polygons[region], np.int32)], 1)
    union = int(np.count_nonzero(a | b))
    return int(np.count_nonzero(a & b)) / union if union else 0.0


def reads_overhead(calibration: Calibration) -> bool:
    """Whether the calibration's mat looks seen from above (opposite sides of about the same length): the
    only view the automatic proposal reads. A camera at the golfer's end or at an angle draws the mat as a
    trapezoid, as every Proof of Putt file of a real rig does."""
    corners = calibration.polygons[Region.MAT]
    if len(corners) != 4:
        return False
    sides = [math.dist(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    return all(
        min(a, b) >= OVERHEAD_SIDE_RATIO * max(a, b) for a, b in ((sides[0], sides[2]), (sides[1], sides[3]))
    )


def estimate_drift(
    image: Image, calibration: Calibration, reference: SceneReference | None
) -> DriftEstimate | None:
    """The rig's move since calibrating: from the reference when there is one, else from the proposal."""
    if reference is not None:
        return estimate_from_reference(reference, image, calibration)
    return estimate_from_proposal(image, calibration)


def judge(estimate: DriftEstimate | None, config: DriftConfig, frame_size: tuple[int, int]) -> DriftVerdict:
    """Still, followed or mismatch."""
    if estimate is None or estimate.confidence < config.min_confidence:
        return DriftVerdict("mismatch", estimate)
    if estimate.displacement <= config.threshold:
        return DriftVerdict("still", estimate)
    diagonal = math.hypot(*frame_size)
    plausible = (
        abs(estimate.rotation) <= config.max_rotation
        and abs(estimate.scale - 1) <= config.max_scale_change
        and math.hypot(*estimate.shift) <= config.max_shift * diagonal
    )
    return DriftVerdict("followed" if plausible else "mismatch", estimate)


def transform_calibration(calibration: Calibration, matrix: Matrix) -> Calibration:
    """The calibration's clicked regions moved by MATRIX (kept inside the frame), lanes and quadrants derived
    again."""
    m = np.array(matrix, np.float64)
    width, height = calibration.frame_size or (1 << 30, 1 << 30)
    clicked = {}
    for region in CLICKED:
        points = np.array(calibration.polygons[region], np.float64) @ m[:, :2].T + m[:, 2]
        clicked[region] = tuple(
            (round(min(max(x, 0), width - 1)), round(min(max(y, 0), height - 1))) for x, y in points
        )
    return Calibration.from_clicked(
        clicked, calibration.camera_index, calibration.frame_size, calibration.calibrated_at
    )
