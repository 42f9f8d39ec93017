"""The simulator's harder looks: each one changes the picture where it should, and nothing else."""

from __future__ import annotations

import itertools
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.commands.simulate_args import LOOKS
from daemon.models import Box, Image
from daemon.sim import rig
from daemon.sim.clip import ClipSpec, build_clip
from daemon.sim.dataset import render_example, write_dataset
from daemon.sim.motion import BallState
from daemon.sim.perspective import CameraChoice
from daemon.sim.realism import Extras, Realism
from daemon.sim.render import Renderer
from daemon.sim.rig import Scene, make_scene
from daemon.sim.script import Occluder
from daemon.sim.truth import BallView

SEEDS = (1, 2, 5)


def ball_at(scene: Scene, x: float, y: float) -> BallView:
    cx, cy = scene.ball_centre(x, y)
    r = scene.ball_radius(x, y)
    return BallView(1, Box(cx - r, cy - r, cx + r, cy + r), BallState((x, y), True, 0.0, 0.0), False)


def core_brightness(image: Image, view: BallView) -> float:
    """Mean grey level of the inner half of the ball's disc."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mask = np.zeros(grey.shape, np.uint8)
    c = view.box.center
    cv2.circle(mask, (round(c.x), round(c.y)), max(1, round(view.box.width / 4)), 1, -1)
    return float(grey[mask > 0].mean())


def pair(seed: int, **features: bool) -> tuple[Renderer, Renderer]:
    """A plain renderer and one with FEATURES, of the same scene."""
    scene = make_scene(seed)
    return Renderer(scene, seed, extras=Extras(seed=seed)), Renderer(
        scene, seed, extras=Extras(seed=seed, **features)
    )


def test_no_share_renders_the_plain_simulator() -> None:
    plain = build_clip(ClipSpec(seed=4, putts=2))[1]
    shares_zero = build_clip(ClipSpec(seed=4, putts=2, realism=Realism.every(0.0)))[1]
    assert np.array_equal(plain.background, shares_zero.background)
    assert shares_zero.extras.plain
    assert not shares_zero.extras.second_ball
    every = build_clip(ClipSpec(seed=4, putts=2, realism=Realism.every(1.0)))[1]
    assert not every.extras.plain
    assert not np.array_equal(plain.background, every.background)


@pytest.mark.parametrize("seed", SEEDS)
def test_balls_in_the_catch_tray_and_return_channel_are_in_shade(seed: int) -> None:
    plain, channel = pair(seed, channel=True)
    scene = plain.scene
    for x, y, shaded in ((516.0, 200.0, True), (420.0, 324.0, True), (250.0, 150.0, False)):
        view = ball_at(scene, x, y)
        lit = core_brightness(plain.render(1.0, [view], []), view)
        seen = core_brightness(channel.render(1.0, [view], []), view)
        if shaded:
            assert seen < 0.8 * lit, (x, y, seen, lit)
        else:
            assert seen == pytest.approx(lit, abs=8)
    # The rails along the dark gutter shine: the track holds both a dark floor and bright lines.
    (x0, y0), (x1, _), _, (_, y1) = rig.RETURN_TRACK
    corners = np.array([scene.to_image(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], np.int32)
    mask = np.zeros((scene.height, scene.width), np.uint8)
    cv2.fillPoly(mask, [corners], 1)
    track = cv2.cvtColor(channel.background, cv2.COLOR_BGR2GRAY)[mask > 0]
    assert np.percentile(track, 99) - np.percentile(track, 30) > 60


@pytest.mark.parametrize("camera", [CameraChoice(), CameraChoice("oblique", 45.0)])
def test_lookalike_putter_head_carries_a_ball_sized_white_insert(camera: CameraChoice) -> None:
    scene = make_scene(3, camera=camera)
    plain = Renderer(scene, 3, extras=Extras(seed=3))
    lookalike = Renderer(scene, 3, extras=Extras(lookalike=True, seed=3))
    d = scene.ball_radius_units * 2
    putter = Occluder("putter", 0.0, 1.0, (250.0, 150.0), (250.0, 150.0), d)
    bright = []
    for renderer in (plain, lookalike):
        frame = np.zeros((scene.height, scene.width, 3), np.uint8)
        renderer.draw_occluder(frame, putter, putter.start)
        bright.append(int((frame.min(axis=2) > 150).sum()))
    ball_area = np.pi * scene.ball_radius(250.0, 150.0) ** 2
    assert bright[0] == 0
    assert 0.3 * ball_area < bright[1] < 1.2 * ball_area


def test_lookalikes_and_second_balls_in_the_dataset() -> None:
    paired = 0
    for seed in range(12):
        _, plain = render_example(seed)
        _, lookalike = render_example(seed, realism=Realism(lookalike=1.0))
        assert lookalike.balls == plain.balls  # the insert is never labelled a ball
        _, doubled = render_example(seed, realism=Realism(second_ball=1.0))
        if plain.negative:
            assert doubled.balls == plain.balls
            continue
        assert len(doubled.balls) in (
            len(plain.balls),
            len(plain.balls) + 1,
        )  # the new one may be off the frame
        extra = [b for b in doubled.balls if b not in plain.balls]
        for box in extra:
            nearest = min(
                float(np.hypot(box.center.x - o.center.x, box.center.y - o.center.y)) for o in plain.balls
            )
            assert nearest < 1.8 * max(box.width, box.height)
            paired += 1
    assert paired >= 6


def test_cheap_sensor_adds_noise_and_rolling_shutter_bands() -> None:
    plain, sensor = pair(2, sensor=True)
    a = plain.render(3.0, [], []).astype(np.float32)
    b = sensor.render(3.0, [], []).astype(np.float32)
    difference = b - a
    assert float(np.std(difference)) > 3.0
    rows = (
        cv2.GaussianBlur(a, (0, 0), 1.0).mean(axis=(1, 2)),
        cv2.GaussianBlur(b, (0, 0), 1.0).mean(axis=(1, 2)),
    )
    ratio = rows[1] / rows[0]
    assert float(ratio.max() - ratio.min()) > 0.05  # bright and dark bands across the picture
    later = sensor.render(3.5, [], []).astype(np.float32).mean(axis=(1, 2)) / rows[0]
    assert int(np.argmax(later)) != int(np.argmax(ratio))  # and they crawl between frames


def test_auto_exposure_steps_the_brightness() -> None:
    plain, exposure = pair(5, exposure=True)
    times = np.arange(0.0, 60.0, 0.25)
    levels = [exposure.sensor.exposure(float(t)) for t in times]
    assert len(set(levels)) >= 5
    assert {plain.sensor.exposure(float(t)) for t in times} == {1.0}
    steps = sum(1 for u, v in itertools.pairwise(levels) if u != v)
    assert steps < len(levels) / 4  # steps, not a flicker
    means = [float(exposure.render(float(t), [], []).mean()) for t in times[::8]]
    assert max(means) > 1.15 * min(means)


def test_glare_and_seams_mark_the_mat() -> None:
    plain, glare = pair(1, glare=True)
    lift = glare.background.astype(np.int16) - plain.background.astype(np.int16)
    assert int((lift.min(axis=2) > 15).sum()) > 100  # soft bright patches
    assert int((lift < 0).sum()) == 0
    plain, seams = pair(1, seams=True)
    change = seams.background.astype(np.int16) - plain.background.astype(np.int16)
    dark = change.max(axis=2) < -25
    scene = plain.scene
    length = np.hypot(*np.subtract(scene.to_image(115, 0), scene.to_image(360, 0)))
    assert int(dark.sum()) > length  # at least one seam's length of much darker line


def test_realism_keeps_the_clip_truth() -> None:
    plain, _, _ = build_clip(ClipSpec(seed=9, putts=4))
    harder, renderer, timeline = build_clip(ClipSpec(seed=9, putts=4, realism=Realism.every(1.0)))
    assert harder.putts == plain.putts
    t = harder.putts[0].strike_time + 0.3
    frame = renderer.render(t, timeline.balls(t), timeline.occluders(t))
    assert frame.shape == (480, 640, 3)


def region_mask(scene: Scene, *polygons: tuple[tuple[float, float], ...]) -> np.ndarray:
    mask = np.zeros((scene.height, scene.width), np.uint8)
    for points in polygons:
        cv2.fillPoly(mask, [np.array([scene.to_image(x, y) for x, y in points], np.int32)], 1)
    return mask


@pytest.mark.parametrize("seed", SEEDS)
def test_light_surround_pales_the_floor_and_keeps_the_mat(seed: int) -> None:
    plain, light = pair(seed, light_surround=True)
    scene = plain.scene
    rig_area = region_mask(scene, rig.MAT, rig.RAMP, rig.CATCH, rig.RETURN_TRACK)
    floor = cv2.erode(1 - rig_area, np.ones((9, 9), np.uint8)) > 0
    mat = cv2.erode(region_mask(scene, rig.MAT), np.ones((9, 9), np.uint8)) > 0
    grey = [cv2.cvtColor(r.background, cv2.COLOR_BGR2GRAY) for r in (plain, light)]
    assert np.median(grey[0][floor]) < 185 < np.median(grey[1][floor])
    assert np.array_equal(plain.background[mat], light.background[mat])
    # A ball on the pale floor casts a grey shadow, not one of the mat's green.
    x, y = 60.0, 150.0
    view = ball_at(scene, x, y)
    frame = light.render(1.0, [view], []).astype(np.int16)
    c, r = view.box.center, view.box.width / 2
    shade = frame[round(c.y + 1.1 * r), round(c.x + 0.4 * r)]
    assert int(shade.max() - shade.min()) < 40, shade


def test_light_surround_gives_half_its_scenes_a_light_catch_tray() -> None:
    light_trays = 0
    for seed in range(10):
        plain, light = pair(seed, light_surround=True)
        scene = plain.scene
        tray = cv2.erode(region_mask(scene, rig.CATCH), np.ones((7, 7), np.uint8)) > 0
        before = float(cv2.cvtColor(plain.background, cv2.COLOR_BGR2GRAY)[tray].mean())
        after = float(cv2.cvtColor(light.background, cv2.COLOR_BGR2GRAY)[tray].mean())
        if after > before + 60:
            light_trays += 1
        else:
            assert after == pytest.approx(before)
    assert 2 <= light_trays <= 8


def ground_around(image: Image, box: Box) -> float:
    """Median grey level of a ring round the ball, past its shadow's core."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mask = np.zeros(grey.shape, np.uint8)
    c, r = (round(box.center.x), round(box.center.y)), box.width / 2
    cv2.circle(mask, c, round(2.4 * r), 1, -1)
    cv2.circle(mask, c, round(1.5 * r), 0, -1)
    return float(np.median(grey[mask > 0]))


def test_pale_share_lays_dataset_balls_on_the_light_surround() -> None:
    light = Realism(light_surround=1.0)
    on_pale = {0.0: 0, 1.0: 0}
    balls = 0
    for seed in range(16):
        # Without the light surround there is no pale ground, and the images are the same as before.
        assert np.array_equal(render_example(seed, pale_share=1.0)[0], render_example(seed)[0])
        for share in on_pale:
            image, info = render_example(seed, realism=light, pale_share=share)
            on_pale[share] += sum(ground_around(image, box) > 150 for box in info.balls)
        balls += len(info.balls)
    assert balls >= 20
    assert on_pale[1.0] >= 0.85 * balls
    assert on_pale[0.0] <= 0.5 * balls


def labels_of(folder: Path) -> list[str]:
    return [label.read_text() for label in sorted((folder / "labels").glob("*.txt"))]


def test_simulate_command_passes_the_pale_share_on(tmp_path: Path) -> None:
    cli = tmp_path / "cli"
    command = [sys.executable, "-m", "daemon", "simulate", "--dataset", str(cli), "--images", "8",
               "--realism", "1", "--pale-share", "1"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    for share in (0.0, 1.0):
        write_dataset(
            tmp_path / str(share), 8, 0, realism=Realism.every(1.0), pale_share=share, progress=False
        )
    assert labels_of(cli) == labels_of(tmp_path / "1.0")
    assert labels_of(cli) != labels_of(tmp_path / "0.0")


def test_simulate_command_gives_one_look_its_own_share(tmp_path: Path) -> None:
    assert tuple(f.name for f in fields(Realism)) == LOOKS
    cli = tmp_path / "cli"
    command = [sys.executable, "-m", "daemon", "simulate", "--dataset", str(cli), "--images", "6",
               "--realism", "1", "--look", "lookalike=0", "--look", "sensor=0.5"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    write_dataset(tmp_path / "api", 6, 0, realism=replace(Realism.every(1.0), lookalike=0.0, sensor=0.5),
                  progress=False)  # fmt: skip
    write_dataset(tmp_path / "every", 6, 0, realism=Realism.every(1.0), progress=False)
    images = sorted(p.name for p in (cli / "images").glob("*.jpg"))
    assert images == sorted(p.name for p in (tmp_path / "api" / "images").glob("*.jpg"))
    for name in images:
        assert (cli / "images" / name).read_bytes() == (tmp_path / "api" / "images" / name).read_bytes()
    assert any(
        (cli / "images" / name).read_bytes() != (tmp_path / "every" / "images" / name).read_bytes()
        for name in images
    )


def test_half_the_light_surrounds_are_lit_harder_than_the_ball_they_hold() -> None:
    lit_harder = 0
    for seed in range(20):
        plain, light = pair(seed, light_surround=True)
        x, y = 60.0, 150.0  # on the floor, left of the mat
        view = ball_at(light.scene, x, y)
        frame = light.render(1.0, [view], [])
        ball, ground = core_brightness(frame, view), ground_around(frame, view.box)
        look = light.scene.look
        if look.sheen == plain.scene.look.sheen:
            assert look.ball == plain.scene.look.ball
            continue
        lit_harder += 1
        # The ball, sheen and all, is darker than the ground round it, and bluish like the real one.
        assert max(look.sheen) < min(look.floor)
        assert ball < ground - 8, (seed, ball, ground)
        assert look.ball[0] >= look.ball[2]
        assert min(look.floor) >= 210
    assert 5 <= lit_harder <= 15
