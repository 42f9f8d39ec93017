"""Automatic calibration proposal: unseen simulated rigs are found in any orientation, close to the truth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.models import Image
from daemon.sim import rig
from daemon.sim.render import Renderer
from daemon.sim.rig import make_scene
from daemon.vision.calibration import Calibration, Polygon, Region, hole_circle, load_calibration
from daemon.vision.drift import SceneReference, reference_path
from daemon.vision.proposal import find_cups, propose
from daemon.vision.rig_layout import LAYOUT

# Unseen seeds (training uses 1000-5999 and 20000-21999), one per way the rig can face.
SEEDS = {7000: 270, 7001: 90, 7003: 0, 7010: 180}


def _frame(seed: int) -> tuple[Image, Calibration]:
    scene = make_scene(seed)
    return Renderer(scene, seed).render(0.0, [], []).copy(), scene.calibration


def _iou(a: Polygon, b: Polygon, size: tuple[int, int]) -> float:
    first, second = np.zeros(size[::-1], np.uint8), np.zeros(size[::-1], np.uint8)
    cv2.fillPoly(first, [np.array(a, np.int32)], 1)
    cv2.fillPoly(second, [np.array(b, np.int32)], 1)
    return int(np.count_nonzero(first & second)) / int(np.count_nonzero(first | second))


def test_the_layout_is_the_simulated_rigs() -> None:
    pairs: list[tuple[tuple[float | tuple[float, float], ...], tuple[float | tuple[float, float], ...]]] = [
        (LAYOUT.mat, rig.MAT), (LAYOUT.ramp, rig.RAMP), (LAYOUT.catch, rig.CATCH),
        (LAYOUT.return_track, rig.RETURN_TRACK), (LAYOUT.left_of_mat, rig.LEFT_OF_MAT),
        (LAYOUT.ignore_area, rig.IGNORE_AREA), (LAYOUT.hole_centre, rig.HOLE_CENTRE),
        (LAYOUT.size, rig.RIG_SIZE),
    ]  # fmt: skip
    for ours, simulated in pairs:
        assert np.array_equal(ours, simulated)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}-facing{SEEDS[s]}")
def test_an_unseen_rig_is_proposed_close_to_its_calibration(seed: int) -> None:
    image, truth = _frame(seed)
    proposal = propose(image)
    assert proposal is not None
    assert abs((proposal.pose.angle - make_scene(seed).pose.angle + 180) % 360 - 180) < 1.0
    size = (image.shape[1], image.shape[0])
    for region in (Region.MAT, Region.RAMP, Region.HOLE, Region.CATCH):
        iou = _iou(proposal.calibration.polygons[region], truth.polygons[region], size)
        assert iou >= 0.9, (region, iou)
    assert proposal.calibration.frame_size == size


def test_the_cup_is_measured_to_a_fraction_of_a_pixel() -> None:
    image, truth = _frame(7001)
    cup = find_cups(image)[0]
    x, y, radius = hole_circle(truth.polygons[Region.HOLE])
    assert abs(cup.x - x) < 0.6
    assert abs(cup.y - y) < 0.6
    assert abs(cup.radius - radius) < 0.6


def test_a_frame_without_a_cup_proposes_nothing() -> None:
    image, _ = _frame(7001)
    floor = cv2.GaussianBlur(image[:60, :80], (0, 0), 3)
    assert propose(cv2.resize(floor, (640, 480))) is None


def test_calibrate_auto_writes_a_valid_calibration_and_its_scene(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    image, truth = _frame(7003)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), image)
    out = tmp_path / "proposed.json"
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "calibrate", "--auto", str(still), "--out", str(out)],
        capture_output=True, text=True, env=cli_env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = load_calibration(out)
    assert written.frame_size == (640, 480)
    assert written.calibrated_at is not None
    assert _iou(written.polygons[Region.RAMP], truth.polygons[Region.RAMP], (640, 480)) >= 0.9
    reference = SceneReference.load(reference_path(out))
    assert reference is not None
    assert len(reference.points) >= 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proposed.json", "proposed.scene.npz", "still.png"]


def test_calibrate_auto_without_out_is_a_usage_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "calibrate", "--auto", str(tmp_path / "still.png")],
        capture_output=True, text=True, env=cli_env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--out" in result.stderr
