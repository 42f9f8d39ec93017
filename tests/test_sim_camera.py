"""The simulator's perspective camera: the rig seen from the golfer's end or from above with a tilt."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.errors import CameraError
from daemon.models import Box, Point
from daemon.sim import rig
from daemon.sim.clip import ClipSpec, SimulatedCamera, build_clip
from daemon.sim.dataset import write_dataset
from daemon.sim.motion import BallState
from daemon.sim.perspective import CameraChoice
from daemon.sim.render import Renderer
from daemon.sim.rig import Scene, make_scene
from daemon.sim.script import PuttRequest
from daemon.sim.truth import BallView
from daemon.vision.calibration import Region, load_calibration

ON_DEMAND = (
    PuttRequest("MAKE", "TOP"), PuttRequest("MAKE", "RIGHT"), PuttRequest("MAKE", "LOW"),
    PuttRequest("MAKE", "LEFT"), PuttRequest("CATCH"), PuttRequest("RETURN"), PuttRequest("TIMEOUT"),
    PuttRequest("QUICK"),
)  # fmt: skip
DETAIL_OF_KIND = {
    "MAKE": "MAKE - HOLE", "CATCH": "MISS - CATCH", "RETURN": "MISS - RETURN", "TIMEOUT": "MISS - TIMEOUT",
    "QUICK": "MISS - QUICK PUTT",
}  # fmt: skip
HOLE = (Region.HOLE_TOP, Region.HOLE_RIGHT, Region.HOLE_LOW, Region.HOLE_LEFT)


def edge_length(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


@pytest.mark.parametrize("tilt", [30.0, 45.0, 65.0])
def test_oblique_camera_sees_the_golfers_end_near_and_large(tilt: float) -> None:
    scene = make_scene(3, camera=CameraChoice("oblique", tilt))
    assert scene.camera is not None
    near, far = (60.0, 150.0), (500.0, 150.0)
    assert scene.to_image(*near)[1] > scene.to_image(*far)[1]  # the golfer's end at the bottom
    # The mat's edge nearest the golfer is longer in the picture than its far edge, and so is a ball.
    (x0, y0), (x1, _), _, (_, y1) = rig.MAT
    near_edge = edge_length(scene.to_image(x0, y0), scene.to_image(x0, y1))
    far_edge = edge_length(scene.to_image(x1, y0), scene.to_image(x1, y1))
    assert near_edge > 1.1 * far_edge
    assert scene.ball_radius(*near) > 1.1 * scene.ball_radius(*far)
    ratio = scene.ball_radius(x0, (y0 + y1) / 2) / scene.ball_radius(x1, (y0 + y1) / 2)
    assert ratio == pytest.approx(near_edge / far_edge, rel=0.1)


def test_steeper_oblique_views_foreshorten_less() -> None:
    ratios = []
    for tilt in (65.0, 45.0, 30.0):
        scene = make_scene(5, camera=CameraChoice("oblique", tilt))
        ratios.append(scene.ball_radius(60.0, 150.0) / scene.ball_radius(500.0, 150.0))
    assert ratios[0] > ratios[1] > ratios[2] > 1.0


@pytest.mark.parametrize("camera", [CameraChoice("oblique"), CameraChoice("top", 20.0)])
def test_calibration_is_the_rig_projected_into_the_image(camera: CameraChoice, tmp_path: Path) -> None:
    scene = make_scene(4, camera=camera)
    mat = tuple((round(x), round(y)) for x, y in (scene.to_image(*p) for p in rig.MAT))
    assert scene.calibration.polygons[Region.MAT] == mat
    assert mat != make_scene(4).calibration.polygons[Region.MAT]
    scene.calibration.save(tmp_path / "cal.json")
    assert load_calibration(tmp_path / "cal.json").polygons == scene.calibration.polygons


def test_the_flat_camera_is_the_top_down_pose() -> None:
    assert make_scene(6, camera=CameraChoice("top")).camera is None
    assert make_scene(6, camera=CameraChoice("top", 0.0)).camera is None
    kinds = {make_scene(seed, camera=CameraChoice("random")).camera is None for seed in range(12)}
    assert kinds == {True, False}  # random draws both flat and angled cameras


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 8, 21])
def test_every_outcome_on_demand_seen_from_the_golfers_end(seed: int) -> None:
    script, _, _ = build_clip(ClipSpec(seed=seed, requests=ON_DEMAND, camera=CameraChoice("oblique")))
    scene, cal = script.scene, script.scene.calibration
    makes = [p for p in script.putts if p.kind == "MAKE"]
    assert [p.detail.split(" - ")[1] for p in makes[:4]] == [
        f"HOLE: {q}" for q in ("TOP", "RIGHT", "LOW", "LEFT")
    ]
    for putt in script.putts:
        ball = script.balls[putt.ball_id - 1]
        path = [
            Point(*scene.ball_centre(*s.position))
            for f in range(putt.first_frame, putt.last_frame + 1)
            if (s := ball.state(f / scene.fps)) is not None and s.visible
        ]
        in_hole = next((i for i, p in enumerate(path) if any(cal.contains(r, p) for r in HOLE)), None)
        caught = next((i for i, p in enumerate(path) if cal.contains(Region.CATCH, p)), None)
        if putt.kind == "MAKE":
            assert in_hole is not None
            assert caught is None
        if putt.kind == "CATCH":
            assert caught is not None
        assert putt.detail.startswith(DETAIL_OF_KIND[putt.kind])


def bright_disc(image: np.ndarray, box: Box) -> Box | None:
    """The circle with the area and centroid of the bright blob around BOX, or None if it is not alone."""
    m = 4
    x1, y1 = max(int(box.x1) - m, 0), max(int(box.y1) - m, 0)
    x2, y2 = min(int(box.x2) + m + 1, image.shape[1]), min(int(box.y2) + m + 1, image.shape[0])
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    _, mask = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(mask)
    if count < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    bx, by, bw, bh, area = stats[best]
    if bx == 0 or by == 0 or bx + bw == mask.shape[1] or by + bh == mask.shape[0]:
        return None
    r = float(np.sqrt(area / np.pi))
    cx, cy = centroids[best]
    return Box(x1 + cx - r, y1 + cy - r, x1 + cx + r, y1 + cy + r)


def test_oblique_clip_boxes_are_the_drawn_balls_and_their_size_follows_distance() -> None:
    script, renderer, timeline = build_clip(ClipSpec(seed=12, putts=4, camera=CameraChoice("oblique", 60.0)))
    fps = script.scene.fps
    checked, sizes = 0, set()
    for f in range(0, int(script.duration * fps), 7):
        views = [v for v in timeline.balls(f / fps) if not v.occluded]
        image = renderer.render(f / fps, views, timeline.occluders(f / fps))
        for view in views:
            sizes.add(round(view.box.width, 1))
            if view.state.speed > 0 or len(views) > 1:
                continue
            drawn = bright_disc(image, view.box)
            if drawn is not None:
                assert view.box.iou(drawn) > 0.8, (f, view.box, drawn)
                checked += 1
    assert checked >= 20
    assert max(sizes) > 1.2 * min(sizes)


def test_dataset_oblique_share(tmp_path: Path) -> None:
    written = write_dataset(tmp_path / "mixed", 30, seed=3, oblique_share=0.5, progress=False)
    angled = sum(info.camera != "top" for info in written)
    assert 8 <= angled <= 22
    meta = [json.loads(line) for line in (tmp_path / "mixed" / "meta.jsonl").read_text().splitlines()]
    assert {m["camera"] for m in meta} >= {"top", "oblique"}
    flat = write_dataset(tmp_path / "flat", 10, seed=3, progress=False)
    assert {info.camera for info in flat} == {"top"}
    clips = write_dataset(tmp_path / "clips", 24, seed=4, oblique_share=1.0, from_clips=True, progress=False)
    assert {info.camera for info in clips} <= {"oblique", "tilted"}


def test_simulate_command_writes_an_oblique_clip(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "clip"
    command = [sys.executable, "-m", "daemon", "simulate", "--out", str(out), "--putts", "1", "--seed", "2",
               "--camera", "oblique", "--tilt", "40"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "oblique camera" in result.stdout
    truth = json.loads((out / "truth.json").read_text())
    assert (truth["camera"], truth["camera_tilt"]) == ("oblique", 40.0)
    scene = make_scene(2, camera=CameraChoice("oblique", 40.0))
    assert load_calibration(out / "calibration.json").polygons == scene.calibration.polygons


def test_simulate_refuses_a_tilt_past_70_degrees(cli_env: dict[str, str]) -> None:
    command = [
        sys.executable,
        "-m",
        "daemon",
        "simulate",
        "--out",
        "x",
        "--camera",
        "oblique",
        "--tilt",
        "80",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env, timeout=60, check=False)
    assert result.returncode == 2
    assert "0 to 70" in result.stderr


def test_live_sim_camera_can_look_from_the_golfers_end() -> None:
    camera = SimulatedCamera.from_url("sim://?seed=3&putts=1&camera=oblique&realtime=0", 640, 480, 30.0)
    assert camera.truth.scene.camera_kind == "oblique"
    frame = camera.read()
    assert frame is not None
    assert frame.image.shape == (480, 640, 3)
    with pytest.raises(CameraError, match="camera must be one of top, oblique, random"):
        SimulatedCamera.from_url("sim://?camera=side", 640, 480, 30.0)


def sharpness(image: np.ndarray, box: Box) -> float:
    """The steepest grey-level step around BOX."""
    m = 4
    x1, y1 = max(int(box.x1) - m, 0), max(int(box.y1) - m, 0)
    grey = cv2.cvtColor(image[y1 : int(box.y2) + m + 1, x1 : int(box.x2) + m + 1], cv2.COLOR_BGR2GRAY)
    return float(np.abs(cv2.Sobel(grey.astype(np.float32), cv2.CV_32F, 1, 0)).max())


def ball_at(scene: Scene, x: float, y: float) -> BallView:
    cx, cy = scene.ball_centre(x, y)
    r = scene.ball_radius(x, y)
    return BallView(1, Box(cx - r, cy - r, cx + r, cy + r), BallState((x, y), True, 0.0, 0.0), False)


def test_balls_off_the_plane_in_focus_are_soft() -> None:
    scene = make_scene(8, camera=CameraChoice("oblique", 60.0))
    assert scene.camera is not None
    sharp_scene = replace(scene, camera=replace(scene.camera, defocus=0.0))
    soft_scene = replace(scene, camera=replace(scene.camera, defocus=4.0))
    assert soft_scene.camera is not None
    near, middle = (40.0, 150.0), (rig.RIG_SIZE[0] / 2, rig.RIG_SIZE[1] / 2)
    assert soft_scene.camera.blur_at(*near) > 1.0
    assert soft_scene.camera.blur_at(*middle) == pytest.approx(0.0, abs=1e-9)
    steps = []
    for current in (sharp_scene, soft_scene):
        renderer = Renderer(current, 8)
        view = ball_at(current, *near)
        steps.append(sharpness(renderer.render(1.0, [view], []).copy(), view.box))
    assert steps[1] < 0.7 * steps[0]
