"""Calibration: the real Proof of Putt files load; lanes and quadrants derive exactly as the original did."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.errors import CalibrationError
from daemon.models import Point
from daemon.vision.calibration import (
    RAMP_LANES,
    Calibration,
    Region,
    load_calibration,
    parse_calibration,
)
from tests.conftest import REAL_FILES


def test_four_real_files_are_present() -> None:
    assert len(REAL_FILES) == 4


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_file_loads_and_derives_the_same_regions(path: Path) -> None:
    raw = json.loads(path.read_text())
    calibration = load_calibration(path)
    for region in Region:
        assert [list(p) for p in calibration.polygons[region]] == raw[region.value], region


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_old_four_point_quadrants_are_rederived(path: Path, tmp_path: Path) -> None:
    raw = json.loads(path.read_text())
    for key in ("HOLE_TOP_ROI", "HOLE_RIGHT_ROI", "HOLE_LOW_ROI", "HOLE_LEFT_ROI"):
        raw[key] = raw[key][:4]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(raw))
    assert load_calibration(old).polygons == load_calibration(path).polygons


def test_round_trip_keeps_regions_and_adds_our_fields(tmp_path: Path) -> None:
    original = load_calibration(REAL_FILES[0])
    with_size = Calibration.from_clicked(original.polygons, 1, (1920, 1080), "2026-11-25T10:00:00Z")
    out = tmp_path / "cal.json"
    with_size.save(out)
    again = load_calibration(out)
    assert again.polygons == original.polygons
    assert again.frame_size == (1920, 1080)
    assert again.calibrated_at == "2026-11-25T10:00:00Z"


def test_lanes_and_quadrants_follow_the_derived_regions() -> None:
    calibration = load_calibration(REAL_FILES[0])
    assert calibration.lane(Point(860, 380)) == "LEFT"
    assert calibration.lane(Point(860, 540)) == "CENTER"
    assert calibration.lane(Point(860, 670)) == "RIGHT"
    assert calibration.lane(Point(500, 300)) == "UNKNOWN"
    assert calibration.quadrant(Point(955, 556)) == "TOP"
    assert calibration.quadrant(Point(890, 556)) == "LOW"
    assert calibration.quadrant(Point(923, 520)) == "LEFT"
    assert calibration.quadrant(Point(923, 590)) == "RIGHT"
    assert calibration.quadrant(Point(700, 556)) is None


@pytest.mark.parametrize(("index", "point", "lane"), [(1, (1170, 682), "CENTER"), (0, (967, 618.5), "RIGHT")])
def test_a_point_in_a_sliver_between_the_bands_takes_the_nearest_band(
    index: int, point: tuple[float, float], lane: str
) -> None:
    # The bands' cut points are whole pixels, so thin slivers along the ramp's edge lie in no band.
    calibration = load_calibration(REAL_FILES[index])
    p = Point(*point)
    assert calibration.contains(Region.RAMP, p)
    assert not any(calibration.contains(band, p) for band in RAMP_LANES)
    assert calibration.lane(p) == lane


def test_edge_counts_as_inside() -> None:
    calibration = load_calibration(REAL_FILES[0])
    x, y = calibration.polygons[Region.CATCH][0]
    assert calibration.contains(Region.CATCH, Point(x, y))


def test_rescale_to_another_resolution() -> None:
    raw = json.loads(REAL_FILES[0].read_text()) | {"frame_width": 1920, "frame_height": 1080}
    half = parse_calibration(raw).scaled(960, 540)
    assert half.frame_size == (960, 540)
    assert half.polygons[Region.RAMP][0] == (486, 210)


def test_every_problem_is_named_by_region() -> None:
    raw = json.loads(REAL_FILES[0].read_text())
    raw["CATCH_ROI"] = [[1, 1], [2, 2]]
    raw["RAMP_ROI"] = [[0, 0], [10, 0], [10, 0], [0, 0]]
    del raw["IGNORE_AREA_ROI"]
    raw["RETURN_TRACK_ROI"] = "nope"
    with pytest.raises(CalibrationError) as caught:
        parse_calibration(raw, "bad.json")
    text = str(caught.value)
    assert "CATCH_ROI: needs at least 3 points" in text
    assert "RAMP_ROI: has zero area" in text
    assert "IGNORE_AREA_ROI: missing" in text
    assert "RETURN_TRACK_ROI: expected a list" in text


def test_points_outside_the_frame_and_a_hole_off_the_ramp_are_refused() -> None:
    raw = json.loads(REAL_FILES[0].read_text()) | {"frame_width": 1000, "frame_height": 1000}
    with pytest.raises(CalibrationError, match=r"CATCH_ROI: point \[1044, 346\] lies outside the frame"):
        parse_calibration(raw)
    raw = json.loads(REAL_FILES[0].read_text())
    raw["HOLE_ROI"] = [[p[0] - 500, p[1]] for p in raw["HOLE_ROI"]]
    with pytest.raises(CalibrationError, match="HOLE_ROI: the hole is neither inside nor touching the ramp"):
        parse_calibration(raw)


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_garbage_files_are_refused_clearly(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_bytes(content)
    with pytest.raises(CalibrationError, match=r"cal\.json: "):
        load_calibration(path)


def test_missing_file() -> None:
    with pytest.raises(CalibrationError, match="file not found"):
        load_calibration(Path("/nonexistent/cal.json"))


def test_calibrate_check_prints_regions_and_draws_them(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "regions.png"
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.zeros((540, 960, 3), np.uint8))
    raw = json.loads(REAL_FILES[0].read_text()) | {"frame_width": 1920, "frame_height": 1080}
    calibration = tmp_path / "cal.json"
    calibration.write_text(json.dumps(raw))
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "calibrate", "--check", str(calibration), "--image", str(still),
         "--draw", str(out)],
        capture_output=True, text=True, env=cli_env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "RAMP_CENTER_ROI" in result.stdout
    drawn = cv2.imread(str(out))
    assert drawn is not None
    assert drawn.shape == (540, 960, 3)
    assert drawn.any()  # the regions were drawn on the (black) still, scaled to its size


def test_calibrate_check_refuses_a_bad_file_with_78(tmp_path: Path, cli_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"PUTTING_MAT_ROI": [[0, 0], [1, 1]]}')
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "calibrate", "--check", str(bad)],
        capture_output=True, text=True, env=cli_env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 78
    assert "PUTTING_MAT_ROI: needs at least 3 points" in result.stderr
    assert "Traceback" not in result.stderr
