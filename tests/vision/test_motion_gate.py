"""The motion gate on synthetic frames: what must and must not count as motion."""

from __future__ import annotations

import cv2
import numpy as np

from daemon.models import Frame, Image
from daemon.vision.motion_gate import MotionGate, MotionGateConfig

WIDTH, HEIGHT = 640, 480


def mat(seed: int = 0) -> Image:
    """A textured green mat: the gate must not mistake its texture for motion."""
    rng = np.random.default_rng(seed)
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = (40, 120, 50)
    texture = rng.integers(-12, 13, (HEIGHT, WIDTH, 1), dtype=np.int16)
    textured: Image = np.clip(image.astype(np.int16) + texture, 0, 255).astype(np.uint8)
    return textured


def with_ball(image: Image, x: int, y: int, radius: int) -> Image:
    out = image.copy()
    cv2.circle(out, (x, y), radius, (235, 235, 235), -1, cv2.LINE_AA)
    return out


def gate_after(reference: Image, **config: object) -> MotionGate:
    gate = MotionGate(MotionGateConfig(**config))  # type: ignore[arg-type]
    first = Frame(0, 0.0, reference)
    assert gate.moved(first)  # no reference yet: the detector must look
    gate.detected(first)
    return gate


def test_the_same_scene_with_camera_noise_is_still() -> None:
    background = mat()
    gate = gate_after(background)
    noise = np.random.default_rng(1).integers(-6, 7, background.shape, dtype=np.int16)
    noisy = np.clip(background.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    assert not gate.moved(Frame(1, 0.033, noisy))


def test_a_small_ball_moving_anywhere_is_motion() -> None:
    background = with_ball(mat(), 100, 100, 4)
    for x, y in ((101 + 8, 100), (320, 240), (637, 477), (2, 3)):
        gate = gate_after(background)
        assert gate.moved(Frame(1, 0.033, with_ball(mat(), x, y, 4))), (x, y)


def test_a_ball_outside_the_crop_is_not_motion() -> None:
    background = mat()
    gate = gate_after(background, crop=(200, 100, 500, 400))
    assert not gate.moved(Frame(1, 0.033, with_ball(background, 60, 60, 6)))
    assert gate.moved(Frame(2, 0.066, with_ball(background, 300, 200, 6)))


def test_the_detector_looks_again_after_max_skip_and_after_reset() -> None:
    background = mat()
    gate = gate_after(background, max_skip=1.0)
    assert not gate.moved(Frame(1, 0.5, background))
    assert gate.moved(Frame(2, 1.0, background))
    gate.detected(Frame(2, 1.0, background))
    assert not gate.moved(Frame(3, 1.5, background))
    gate.reset()
    assert gate.moved(Frame(4, 1.6, background))


def test_odd_scales_and_small_crops_still_work() -> None:
    background = mat()
    for scale in (1, 3, 4, 8):
        gate = gate_after(background, scale=scale, crop=(10, 10, 73, 57))  # odd sizes too
        assert not gate.moved(Frame(1, 0.033, background))
        assert gate.moved(Frame(2, 0.066, with_ball(background, 40, 30, 6)))
