"""Rendering a simulated frame: a static background drawn once per scene, then per frame only the balls,
the putter and feet, the lighting and sensor noise. Fast enough for several times real time on one core.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from daemon.models import Box, Image
from daemon.sim import rig
from daemon.sim.realism import Extras, Sensor, dress_background, lookalike_insert, surround
from daemon.sim.rig import Scene
from daemon.sim.script import Occluder
from daemon.sim.truth import BallView

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def _fixed(x: float, y: float) -> tuple[int, int]:
    return round(x * _ONE), round(y * _ONE)


def _polygon(scene: Scene, points: tuple[tuple[float, float], ...]) -> np.ndarray:
    return np.array([_fixed(*scene.to_image(x, y)) for x, y in points], np.int32).reshape(-1, 1, 2)


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    b, g, r = (min(255, max(0, round(c * factor))) for c in colour)
    return b, g, r


def draw_background(scene: Scene, rng: np.random.Generator) -> Image:
    """Floor, mat, ramp, cup, catch and return track, with texture, specks and vignetting."""
    h, w, look = scene.height, scene.width, scene.look
    image = np.empty((h, w, 3), np.uint8)
    image[:] = look.floor
    regions = (
        (rig.MAT, look.mat), (rig.RAMP, look.ramp), (rig.CATCH, look.catch), (rig.RETURN_TRACK, look.track),
    )  # fmt: skip
    for points, colour in regions:
        cv2.fillPoly(image, [_polygon(scene, points)], colour, cv2.LINE_AA, _SHIFT)
    # Mown stripes across the mat.
    for i in range(0, 245, 35):
        band = ((115 + i, 0), (min(115 + i + 17, 360), 0), (min(115 + i + 17, 360), 300), (115 + i, 300))
        cv2.fillPoly(image, [_polygon(scene, band)], _shade(look.mat, 1.07), cv2.LINE_AA, _SHIFT)
    _draw_cup(image, scene)
    texture = cv2.GaussianBlur(rng.normal(0, look.texture, (h, w)).astype(np.float32), (3, 3), 0)
    blotches = cv2.resize(rng.normal(0, look.texture, (h // 24 + 1, w // 24 + 1)).astype(np.float32), (w, h))
    shaded = image.astype(np.float32) + (texture + blotches)[:, :, None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1.0 - 0.25 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
    shaded *= vignette[:, :, None] * np.array(look.tint, np.float32)
    image = np.clip(shaded, 0, 255).astype(np.uint8, copy=False)
    for _ in range(int(rng.integers(3, 12))):  # lint and specks: white dots that are not balls
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        cv2.circle(image, _fixed(x, y), round(float(rng.uniform(0.6, 1.8)) * _ONE), (225, 228, 230), -1,
                   cv2.LINE_AA, _SHIFT)  # fmt: skip
    drawn: Image = image
    return drawn


def _ring(scene: Scene, centre: tuple[float, float], radius: float, points: int = 32) -> np.ndarray:
    """A circle of RADIUS rig units on the mat, as the camera sees it."""
    ring = [(centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, points, endpoint=False)]  # fmt: skip
    return _polygon(scene, tuple(ring))


def _draw_cup(image: Image, scene: Scene) -> None:
    cup = scene.cup_radius_units
    if scene.camera is not None:  # seen at an angle the cup is an ellipse, larger when nearer
        rim = 1.5 / scene.pose.scale
        cv2.fillPoly(image, [_ring(scene, rig.HOLE_CENTRE, cup + rim)], _shade(scene.look.ramp, 0.75),
                     cv2.LINE_AA, _SHIFT)  # fmt: skip
        cv2.fillPoly(image, [_ring(scene, rig.HOLE_CENTRE, cup)], (18, 18, 20), cv2.LINE_AA, _SHIFT)
        return
    cx, cy = scene.to_image(*rig.HOLE_CENTRE)
    radius = cup * scene.pose.scale
    cv2.circle(image, _fixed(cx, cy), round((radius + 1.5) * _ONE), _shade(scene.look.ramp, 0.75), -1,
               cv2.LINE_AA, _SHIFT)  # fmt: skip
    cv2.circle(image, _fixed(cx, cy), round(radius * _ONE), (18, 18, 20), -1, cv2.LINE_AA, _SHIFT)


class Renderer:
    """Draws frames of one scene."""

    def __init__(self, scene: Scene, seed: int, noise_banks: int = 6, extras: Extras | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.extras = extras if extras is not None else Extras(seed=seed)
        scene = surround(scene, self.extras)
        self.scene = scene
        self.background = draw_background(scene, rng)
        if not self.extras.plain:
            self.background = dress_background(self.background, scene, self.extras)
        self.sensor = Sensor(self.extras, (scene.width, scene.height))
        shape = (scene.height, scene.width, 3)
        sigma = scene.look.noise
        self._noise_up = [np.abs(rng.normal(0, sigma, shape)).astype(np.uint8) for _ in range(noise_banks)]
        self._noise_down = [np.abs(rng.normal(0, sigma, shape)).astype(np.uint8) for _ in range(noise_banks)]
        self._rng = rng
        self._frame = np.empty(shape, np.uint8)
        self._shadow = _shade(scene.look.mat, 0.55)

    def gain(self, t: float) -> float:
        """Lighting at time t: slow drift plus a little flicker."""
        look = self.scene.look
        drift = 1 + look.drift_amount * math.sin(2 * math.pi * t / look.drift_period)
        return look.light * drift * (1 + look.flicker * float(self._rng.standard_normal()))

    def render(
        self, t: float, balls: list[BallView], occluders: list[tuple[Occluder, tuple[float, float]]]
    ) -> Image:
        """The frame at time t (a buffer reused by the next call: copy it to keep it)."""
        frame = self._frame
        np.copyto(frame, self.background)
        for view in balls:
            self._ball(frame, view)
        for occluder, at in occluders:
            self.draw_occluder(frame, occluder, at)
        cv2.convertScaleAbs(frame, frame, alpha=self.gain(t) * self.sensor.exposure(t))
        i, j = self._rng.integers(0, len(self._noise_up), 2)
        cv2.add(frame, self._noise_up[i], frame)
        cv2.subtract(frame, self._noise_down[j], frame)
        self.sensor.develop(frame, t)
        return frame

    def _ball(self, frame: Image, view: BallView) -> None:
        blur = self.scene.camera.blur_at(*view.state.position) if self.scene.camera is not None else 0.0
        if blur < 0.4:
            self._draw_ball(frame, view)
            return
        # Out of focus: the ball is drawn sharp, then blurred into what lay under it.
        box, margin = view.box, 3 * blur + 4
        x1, y1 = max(int(box.x1 - margin), 0), max(int(box.y1 - margin), 0)
        x2, y2 = min(int(box.x2 + margin) + 1, frame.shape[1]), min(int(box.y2 + margin) + 1, frame.shape[0])
        if x2 <= x1 or y2 <= y1:
            return
        under = frame[y1:y2, x1:x2].astype(np.float32)
        self._draw_ball(frame, view)
        patch = frame[y1:y2, x1:x2]
        drawn = (patch.astype(np.float32) != under).any(axis=2).astype(np.float32)
        alpha = cv2.GaussianBlur(drawn, (0, 0), blur)[:, :, None]
        soft = cv2.GaussianBlur(patch.astype(np.float32), (0, 0), blur)
        patch[:] = np.clip(soft * alpha + under * (1 - alpha), 0, 255).astype(np.uint8)

    def _draw_ball(self, frame: Image, view: BallView) -> None:
        scene = self.scene
        c = view.box.center
        # cv2's anti-aliased disc spreads half a pixel past its radius; the drawn ball must match its box.
        r = scene.ball_radius(*view.state.position) - 0.45
        colour = scene.look.ball
        if self.extras.channel:
            colour = _shade(colour, self.sensor.ball_light(*view.state.position))
        shadow = _fixed(c.x + 0.25 * r, c.y + 0.3 * r)
        cv2.circle(frame, shadow, round(r * _ONE), self._shadow_under(c.x, c.y), -1, cv2.LINE_AA, _SHIFT)
        dx, dy = self._smear(view)
        if math.hypot(dx, dy) > 1.5:
            cv2.line(frame, _fixed(c.x - dx, c.y - dy), _fixed(c.x + dx, c.y + dy), _shade(colour, 0.9),
                     max(1, round(2 * r)), cv2.LINE_AA, _SHIFT)  # fmt: skip
        cv2.circle(frame, _fixed(c.x, c.y), round(r * _ONE), _shade(colour, 0.82), -1, cv2.LINE_AA, _SHIFT)
        lit = _fixed(c.x - 0.12 * r, c.y - 0.12 * r)
        cv2.circle(frame, lit, round(0.82 * r * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)
        sheen = _fixed(c.x - 0.35 * r, c.y - 0.35 * r)
        cv2.circle(frame, sheen, round(0.25 * r * _ONE), scene.look.sheen, -1, cv2.LINE_AA, _SHIFT)

    def _shadow_under(self, x: float, y: float) -> tuple[int, int, int]:
        if not self.extras.light_surround:
            return self._shadow
        # On a pale surface the shadow is a darker tone of that surface, not of the mat.
        h, w = self.background.shape[:2]
        b, g, r = (
            int(v) for v in self.background[min(max(round(y), 0), h - 1), min(max(round(x), 0), w - 1)]
        )
        return _shade((b, g, r), 0.7)

    def _smear(self, view: BallView) -> tuple[float, float]:
        """Half the image path of a ball over half a frame of exposure: the motion blur's half length."""
        scene, state = self.scene, view.state
        step = state.speed / scene.fps / 2
        if scene.camera is None:
            step *= scene.pose.scale
            if step <= 1.5:
                return 0.0, 0.0
            heading = state.heading + math.radians(scene.pose.angle)
            return step * math.cos(heading), step * math.sin(heading)
        x, y = state.position
        ax, ay = scene.ball_centre(x - step * math.cos(state.heading), y - step * math.sin(state.heading))
        bx, by = scene.ball_centre(x + step * math.cos(state.heading), y + step * math.sin(state.heading))
        return (bx - ax) / 2, (by - ay) / 2

    def draw_occluder(self, frame: Image, occluder: Occluder, at: tuple[float, float]) -> None:
        """Draw a putter head or foot standing at AT (rig units) onto FRAME."""
        scene = self.scene
        if scene.camera is not None:
            self._draw_occluder_seen_at_an_angle(frame, occluder, at)
            return
        x, y = scene.to_image(*at)
        size = occluder.size * scene.pose.scale
        angle = scene.pose.angle
        if occluder.kind == "putter":
            rect = ((x, y), (1.2 * size, 3.2 * size), angle + 90)
            box = cv2.boxPoints(rect)
            cv2.fillPoly(frame, [np.round(box * _ONE).astype(np.int32)], (45, 45, 50), cv2.LINE_AA, _SHIFT)
            self._insert(frame, occluder, at)
            return
        axes = (round(1.8 * size), round(0.9 * size))
        cv2.ellipse(frame, (round(x), round(y)), axes, angle, 0, 360, (30, 28, 35), -1, cv2.LINE_AA)

    def insert_box(self, occluder: Occluder, at: tuple[float, float]) -> Box | None:
        """The image box of the look-alike insert on OCCLUDER standing at AT; None when it has none."""
        disc = self._insert_disc(occluder, at)
        if disc is None:
            return None
        cx, cy, r = disc
        return Box(cx - r, cy - r, cx + r, cy + r)

    def _insert_disc(self, occluder: Occluder, at: tuple[float, float]) -> tuple[float, float, float] | None:
        if not self.extras.lookalike or occluder.kind != "putter":
            return None
        (x, y), radius = lookalike_insert(at, occluder.size)
        cx, cy = self.scene.to_image(x, y)
        scale = self.scene.pose.scale if self.scene.camera is None else self.scene.camera.scale_at(x, y)
        return cx, cy, radius * scale

    def _insert(self, frame: Image, occluder: Occluder, at: tuple[float, float]) -> None:
        """A look-alike putter's round white insert: flat, no shadow, about a ball's size."""
        disc = self._insert_disc(occluder, at)
        if disc is not None:
            cx, cy, r = disc
            cv2.circle(frame, _fixed(cx, cy), round(r * _ONE), (226, 230, 232), -1, cv2.LINE_AA, _SHIFT)

    def _draw_occluder_seen_at_an_angle(
        self, frame: Image, occluder: Occluder, at: tuple[float, float]
    ) -> None:
        # The same shapes as the flat pose draws, laid on the mat in rig axes and projected.
        x, y, size = at[0], at[1], occluder.size
        if occluder.kind == "putter":
            corners = ((x - 1.6 * size, y - 0.6 * size), (x + 1.6 * size, y - 0.6 * size),
                       (x + 1.6 * size, y + 0.6 * size), (x - 1.6 * size, y + 0.6 * size))  # fmt: skip
            cv2.fillPoly(frame, [_polygon(self.scene, corners)], (45, 45, 50), cv2.LINE_AA, _SHIFT)
            self._insert(frame, occluder, at)
            return
        outline = tuple((x + 1.8 * size * math.cos(a), y + 0.9 * size * math.sin(a))
                        for a in np.linspace(0, 2 * math.pi, 24, endpoint=False))  # fmt: skip
        cv2.fillPoly(frame, [_polygon(self.scene, outline)], (30, 28, 35), cv2.LINE_AA, _SHIFT)
