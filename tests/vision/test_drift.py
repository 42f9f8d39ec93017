"""Calibration drift: a knocked camera is measured and followed, a still one is left alone, another rig's
calibration is refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from daemon.models import Frame, Image
from daemon.sim.render import Renderer
from daemon.sim.rig import make_scene
from daemon.vision.calibration import CLICKED, Calibration, Region
from daemon.vision.drift import (
    DriftConfig,
    DriftEstimate,
    SceneReference,
    estimate_drift,
    judge,
    make_reference,
    reads_overhead,
    reference_path,
    transform_calibration,
    write_reference,
)
from daemon.vision.drift_watch import DriftWatch

SIZE = (640, 480)
CONFIG = DriftConfig()
# (dx, dy, degrees, zoom), the range a knocked camera moves in.
MOVES = [(5, 0, 0.0, 1.0), (-20, 12, 1.0, 1.0), (60, 0, 0.0, 1.0), (-40, -35, 3.0, 1.0), (25, 30, -3.0, 1.05),
         (0, 0, 0.0, 0.95)]  # fmt: skip


class Rig:
    """One simulated rig, its calibration and the reference taken when it was calibrated."""

    def __init__(self, seed: int) -> None:
        self.scene = make_scene(seed)
        self.renderer = Renderer(self.scene, seed)
        self.calibration: Calibration = self.scene.calibration
        self.reference = make_reference(self.frame(0.0), self.calibration)

    def frame(self, t: float) -> Image:
        return self.renderer.render(t, [], []).copy()


@pytest.fixture(scope="module")
def rig() -> Rig:
    return Rig(7002)


def _camera_move(dx: float, dy: float, degrees: float, zoom: float) -> npt.NDArray[np.float64]:
    matrix: npt.NDArray[np.float64] = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] / 2), degrees, zoom)
    matrix[:, 2] += (dx, dy)
    return matrix


def _warp(image: Image, matrix: npt.NDArray[np.float64]) -> Image:
    moved: Image = cv2.warpAffine(image, matrix, SIZE, borderMode=cv2.BORDER_REFLECT)
    return moved


def test_the_reference_is_kept_beside_the_calibration(tmp_path: Path, rig: Rig) -> None:
    calibration_file = tmp_path / "calibration.json"
    image = rig.frame(0.0)
    path = write_reference(image, rig.calibration, calibration_file)
    assert path == reference_path(calibration_file) == tmp_path / "calibration.scene.npz"
    loaded = SceneReference.load(path)
    assert loaded is not None
    assert loaded.frame_size == SIZE
    assert np.array_equal(loaded.descriptors, make_reference(image, rig.calibration).descriptors)
    assert path.stat().st_size < 100_000
    x1, _, x2, _ = rig.calibration.bounds()
    assert (loaded.points[:, 0] > x1 - 0.1 * (x2 - x1)).all()
    assert SceneReference.load(tmp_path / "none.scene.npz") is None


@pytest.mark.parametrize("move", MOVES, ids=str)
def test_a_knocked_camera_is_measured_and_followed(rig: Rig, move: tuple[float, float, float, float]) -> None:
    matrix = _camera_move(*move)
    estimate = estimate_drift(_warp(rig.frame(90.0), matrix), rig.calibration, rig.reference)
    verdict = judge(estimate, CONFIG, SIZE)
    assert verdict.state == "followed", verdict.describe()
    assert estimate is not None
    assert abs(estimate.rotation + move[2]) < 0.15  # getRotationMatrix2D turns the other way
    assert abs(estimate.scale - move[3]) < 0.005
    followed = transform_calibration(rig.calibration, estimate.matrix)
    expected = transform_calibration(rig.calibration, ((*matrix[0],), (*matrix[1],)))
    for region in (Region.MAT, Region.RAMP, Region.HOLE, Region.CATCH):
        error = np.abs(np.array(followed.polygons[region]) - np.array(expected.polygons[region])).max()
        assert error <= 2, (region, error)


def test_a_still_rig_raises_no_drift_over_an_hour(rig: Rig) -> None:
    # One check every five minutes, as the service makes them, through the lighting's slow cycles.
    for t in np.arange(0.0, 3601.0, 300.0):
        verdict = judge(estimate_drift(rig.frame(float(t)), rig.calibration, rig.reference), CONFIG, SIZE)
        assert verdict.state == "still", (t, verdict.describe())


def test_another_rigs_calibration_does_not_match(rig: Rig) -> None:
    other = Rig(7102)
    frame = rig.frame(30.0)
    assert judge(estimate_drift(frame, other.calibration, other.reference), CONFIG, SIZE).state == "mismatch"
    assert judge(estimate_drift(frame, other.calibration, None), CONFIG, SIZE).state == "mismatch"


def test_without_a_reference_the_proposal_checks_the_calibration(rig: Rig) -> None:
    still = estimate_drift(rig.frame(45.0), rig.calibration, None)
    assert judge(still, CONFIG, SIZE).state == "still"
    moved = estimate_drift(_warp(rig.frame(45.0), _camera_move(25, -15, 0.0, 1.0)), rig.calibration, None)
    verdict = judge(moved, CONFIG, SIZE)
    assert verdict.state == "followed", verdict.describe()
    assert moved is not None
    assert moved.method == "proposal"
    assert abs(moved.shift[0] - 25) < 2
    assert abs(moved.shift[1] + 15) < 2


def test_without_a_reference_a_view_from_an_angle_is_not_checked(rig: Rig) -> None:
    corners = rig.calibration.polygons[Region.MAT]
    left = min(x for x, _ in corners)
    right = max(x for x, _ in corners)
    top = min(y for _, y in corners)
    # The far edge drawn 30% shorter, as a camera at the golfer's end sees the mat.
    inset = round(0.15 * (right - left))
    narrowed = tuple(((x + inset if x == left else x - inset), y) if y == top else (x, y) for x, y in corners)
    clicked = {region: rig.calibration.polygons[region] for region in CLICKED}
    angled = Calibration.from_clicked(clicked | {Region.MAT: narrowed}, 0, rig.calibration.frame_size, None)
    assert reads_overhead(rig.calibration)
    assert not reads_overhead(angled)
    for reference, calibration, checked in ((None, angled, False), (None, rig.calibration, True),
                                            (rig.reference, angled, True)):  # fmt: skip
        watch = DriftWatch(CONFIG, reference, background=False)
        verdict = watch.offer(Frame(0, 0.0, rig.frame(10.0)), calibration, still=True)
        assert (verdict is not None) is checked, (reference is not None, calibration is angled)


def _estimate(
    rotation: float = 0.0, scale: float = 1.0, shift: float = 20.0, confidence: float = 0.8
) -> DriftEstimate:
    return DriftEstimate(
        ((1, 0, shift), (0, 1, 0)), (shift, 0), rotation, scale, shift, confidence, "reference"
    )


def test_moves_no_knock_makes_are_a_mismatch() -> None:
    assert judge(_estimate(), CONFIG, SIZE).state == "followed"
    assert judge(_estimate(shift=3.0), CONFIG, SIZE).state == "still"
    assert judge(_estimate(rotation=25.0), CONFIG, SIZE).state == "mismatch"
    assert judge(_estimate(scale=1.4), CONFIG, SIZE).state == "mismatch"
    assert judge(_estimate(shift=300.0), CONFIG, SIZE).state == "mismatch"
    assert judge(_estimate(confidence=0.05), CONFIG, SIZE).state == "mismatch"
    assert judge(None, CONFIG, SIZE).state == "mismatch"
