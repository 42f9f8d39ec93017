"""Harder looks for simulated scenes, each on for a share of scenes: where the detector misses real balls.

`Realism` holds the share of scenes that get each feature; `Extras.draw` decides, from a scene's seed alone,
which ones a scene gets and how strong they are, so the plain simulator (every share 0) renders exactly what
it rendered before. The features:

- channel: the return track is a dark gutter between two shiny rails, the catch a grey tray with a sheen, and
  a ball inside either is in their shade (dimmed to 40-70%).
- lookalike: the putter head carries a round white insert about a ball's size, which is not a ball.
- sensor: a cheap camera: strong noise, mains flicker read out by a rolling shutter as horizontal bands that
  move from frame to frame, and a soft lens.
- exposure: auto-exposure steps: the brightness jumps by up to a third every few seconds.
- glare: soft specular highlights of the lamps on the mat and ramp.
- seams: carpet grain along one direction and the seams where strips of mat meet.
- second_ball: (dataset images) a second ball resting right next to one of the others.
- light_surround: the rig stands on a white table or a pale floor, where a white ball shows only by its
  shading and shadow; in half of these scenes the catch tray and return track are light plastic too. In
  half of them, independently, the surface is lit harder than the balls (a lamp over a white table, or a
  camera exposing for the mat): it clips to near white, and a ball is a dull grey-blue a little darker than
  it, without a bright sheen, so it is never the brightest thing in view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from daemon.models import Image
from daemon.sim import rig
from daemon.sim.rig import Scene

_SHIFT = 4
_ONE = 1 << _SHIFT
XY = tuple[float, float]
Colour = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Realism:
    """Share of scenes (0 to 1) that get each harder look."""

    channel: float = 0.0
    lookalike: float = 0.0
    sensor: float = 0.0
    exposure: float = 0.0
    glare: float = 0.0
    seams: float = 0.0
    second_ball: float = 0.0
    light_surround: float = 0.0

    @classmethod
    def every(cls, share: float) -> Realism:
        """Each feature for SHARE of the scenes, drawn independently."""
        return cls(**dict.fromkeys(_FEATURES, share))


PLAIN = Realism()
# Drawn in this order from a scene's stream: a new feature goes last, so older ones keep their draws.
_FEATURES = ("channel", "lookalike", "sensor", "exposure", "glare", "seams", "second_ball", "light_surround")


@dataclass(frozen=True, slots=True)
class Extras:
    """The harder looks one scene got, and their strengths."""

    channel: bool = False
    lookalike: bool = False
    sensor: bool = False
    exposure: bool = False
    glare: bool = False
    seams: bool = False
    second_ball: bool = False
    light_surround: bool = False
    seed: int = 0

    @classmethod
    def draw(cls, realism: Realism, seed: int) -> Extras:
        """The features scene SEED gets under REALISM, from a random stream of its own."""
        rng = np.random.default_rng([seed, 11])
        on = {name: bool(rng.random() < getattr(realism, name)) for name in _FEATURES}
        return cls(**on, seed=seed)

    @property
    def plain(self) -> bool:
        return not (
            self.channel
            or self.lookalike
            or self.sensor
            or self.exposure
            or self.glare
            or self.seams
            or self.light_surround
        )


def _points(scene: Scene, points: list[XY]) -> np.ndarray:
    return np.array(
        [(round(x * _ONE), round(y * _ONE)) for x, y in (scene.to_image(*p) for p in points)], np.int32
    ).reshape(-1, 1, 2)


def _line(
    image: Image, scene: Scene, segment: tuple[XY, XY], colour: tuple[int, int, int], width: int
) -> None:
    (ax, ay), (bx, by) = scene.to_image(*segment[0]), scene.to_image(*segment[1])
    cv2.line(image, (round(ax * _ONE), round(ay * _ONE)), (round(bx * _ONE), round(by * _ONE)), colour, width,
             cv2.LINE_AA, _SHIFT)  # fmt: skip


def in_channel(x: float, y: float) -> bool:
    """Whether rig point (x, y) lies in the catch tray or the return track."""
    for points in (rig.CATCH, rig.RETURN_TRACK):
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys):
            return True
    return False


def _channel(image: Image, scene: Scene, rng: np.random.Generator) -> None:
    gutter = int(rng.integers(18, 45))
    cv2.fillPoly(image, [_points(scene, list(rig.RETURN_TRACK))], (gutter, gutter, gutter + 3), cv2.LINE_AA,
                 _SHIFT)  # fmt: skip
    rail = tuple(int(v) for v in rng.integers(150, 235, 3))
    (x0, y0), (x1, _), _, (_, y1) = rig.RETURN_TRACK
    for y in (y0 + 2.5, y1 - 2.5):
        _line(image, scene, ((x0, y), (x1, y)), (rail[0], rail[1], rail[2]), 2)
    tray = int(rng.integers(70, 135))
    cv2.fillPoly(image, [_points(scene, list(rig.CATCH))], (tray, tray, tray + 4), cv2.LINE_AA, _SHIFT)
    (cx0, cy0), (cx1, _), _, (_, cy1) = rig.CATCH
    sheen = min(255, tray + int(rng.integers(40, 90)))
    middle = float(rng.uniform(cx0 + 8, cx1 - 8))
    _line(image, scene, ((middle, cy0 + 4), (middle, cy1 - 4)), (sheen, sheen, sheen), 3)
    for x in (cx0 + 1, cx1 - 1):
        _line(image, scene, ((x, cy0), (x, cy1)), (tray // 2, tray // 2, tray // 2), 2)


def _glare(image: Image, scene: Scene, rng: np.random.Generator) -> Image:
    h, w = image.shape[:2]
    light = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        x, y = scene.to_image(float(rng.uniform(120, 490)), float(rng.uniform(10, 300)))
        size = float(rng.uniform(8, 35)) * scene.pose.scale
        axes = (max(1, round(size)), max(1, round(size * float(rng.uniform(0.3, 1.0)))))
        cv2.ellipse(light, (round(x), round(y)), axes, float(rng.uniform(0, 180)), 0, 360,
                    float(rng.uniform(40, 110)), -1)  # fmt: skip
    light = cv2.GaussianBlur(light, (0, 0), max(2.0, 0.4 * float(np.sqrt(light.astype(bool).sum() / 3.14))))
    glared: Image = np.clip(image + light[:, :, None], 0, 255).astype(np.uint8)
    return glared


def _seams(image: Image, scene: Scene, rng: np.random.Generator) -> Image:
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [_points(scene, list(rig.MAT))], 1, cv2.LINE_8, _SHIFT)
    grain = rng.normal(0, float(rng.uniform(5, 12)), (h, w)).astype(np.float32)
    kernel = np.full((1, 9), 1 / 9, np.float32) if rng.random() < 0.5 else np.full((9, 1), 1 / 9, np.float32)
    grain = cv2.filter2D(grain, -1, kernel) * 3
    grained: Image = np.clip(image + (grain * mask)[:, :, None], 0, 255).astype(np.uint8)
    (x0, y0), (x1, _), _, (_, y1) = rig.MAT
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            x = float(rng.uniform(x0 + 10, x1 - 10))
            a, b = (x, float(y0)), (x, float(y1))
        else:
            y = float(rng.uniform(y0 + 10, y1 - 10))
            a, b = (float(x0), y), (float(x1), y)
        dark = tuple(int(v * 0.55) for v in scene.look.mat)
        _line(grained, scene, (a, b), (dark[0], dark[1], dark[2]), 2)
    return grained


def _pale(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    grey = int(rng.integers(low, high + 1))
    b, g, r = (int(np.clip(grey + rng.integers(-8, 9), 0, 255)) for _ in range(3))
    return b, g, r


def surround(scene: Scene, extras: Extras) -> Scene:
    """SCENE as the background is drawn: with a light surround when EXTRAS has one."""
    if not extras.light_surround:
        return scene
    rng = np.random.default_rng([extras.seed, 13])
    look = replace(scene.look, floor=_pale(rng, 195, 240))
    if rng.random() < 0.5:
        look = replace(look, catch=_pale(rng, 165, 215), track=_pale(rng, 175, 225))
    # A stream of its own, so the scenes whose surface is not lit harder keep their draws.
    lit = np.random.default_rng([extras.seed, 16])
    if lit.random() < 0.5:
        floor = _pale(lit, 226, 250)
        ball, sheen = _dull_ball(lit, floor)
        look = replace(look, floor=floor, ball=ball, sheen=sheen)
    return replace(scene, look=look)


def _dull_ball(rng: np.random.Generator, surface: Colour) -> tuple[Colour, Colour]:
    """A ball in its own shade under a lamp that lights the surface round it harder, and its sheen: a
    little darker than the grey SURFACE, bluish, and with a faint highlight."""
    grey = float(np.mean(surface)) * float(rng.uniform(0.78, 0.92))
    cool = float(rng.uniform(0, 14))
    b, g, r = (int(np.clip(round(v), 0, 255)) for v in (grey + cool, grey, grey - cool / 2))
    sheen = min(255, max(b, g, r) + int(rng.integers(3, 18)))
    return (b, g, r), (sheen, sheen, sheen)


def dress_background(background: Image, scene: Scene, extras: Extras) -> Image:
    """The scene's background with its channel, glare and seams."""
    rng = np.random.default_rng([extras.seed, 12])
    image = background
    if extras.seams:
        image = _seams(image, scene, rng)
    if extras.channel:
        image = image.copy()
        _channel(image, scene, rng)
    if extras.glare:
        image = _glare(image, scene, rng)
    return image


class Sensor:
    """What a cheap camera does to each frame: exposure steps, flicker bands, noise and a soft lens.

    The bands and the noise are drawn once, as images to add and subtract, so a frame costs a few saturating
    additions rather than fresh random numbers.
    """

    def __init__(self, extras: Extras, size: tuple[int, int], banks: int = 3) -> None:
        rng = np.random.default_rng([extras.seed, 13])
        self.extras = extras
        self.channel_dim = float(rng.uniform(0.4, 0.7))
        self._steps = np.cumsum(rng.uniform(1.5, 8.0, 64))  # times of the exposure steps
        self._levels = rng.uniform(0.7, 1.35, 65)
        self._soft = bool(rng.random() < 0.5)
        self._rng = rng
        self._height = size[1]
        if not extras.sensor:
            return
        width, height = size
        period = float(rng.uniform(20, 90))  # rows per flicker band
        depth = float(rng.uniform(4, 12))  # grey levels
        rows = depth * np.sin(2 * np.pi * np.arange(2 * height) / period)
        band = np.repeat(rows[:, None, None], width, axis=1).repeat(3, axis=2)
        self._band_up = np.clip(band, 0, 255).astype(np.uint8)
        self._band_down = np.clip(-band, 0, 255).astype(np.uint8)
        sigma = float(rng.uniform(5, 12))
        shape = (height, width, 3)
        self._noise = [np.abs(rng.normal(0, sigma, shape)).astype(np.uint8) for _ in range(2 * banks)]

    def exposure(self, t: float) -> float:
        """Gain of the auto-exposure at time t (1 without exposure steps)."""
        if not self.extras.exposure:
            return 1.0
        return float(self._levels[int(np.searchsorted(self._steps, t % self._steps[-1]))])

    def ball_light(self, x: float, y: float) -> float:
        """How much of the lamp's light a ball at rig point (x, y) gets."""
        return self.channel_dim if self.extras.channel and in_channel(x, y) else 1.0

    def develop(self, frame: Image, t: float) -> None:
        """Apply the cheap sensor to FRAME in place (nothing without the sensor feature)."""
        if not self.extras.sensor:
            return
        start = int(t * 30 * 7) % self._height  # the bands crawl through the picture
        rows = slice(start, start + frame.shape[0])
        cv2.add(frame, self._band_up[rows], frame)
        cv2.subtract(frame, self._band_down[rows], frame)
        i, j = self._rng.integers(0, len(self._noise), 2)
        cv2.add(frame, self._noise[i], frame)
        cv2.subtract(frame, self._noise[j], frame)
        if self._soft:
            cv2.GaussianBlur(frame, (3, 3), 0, frame)


def lookalike_insert(at: XY, size: float) -> tuple[XY, float]:
    """Where on a putter head of SIZE standing at AT the round insert sits (rig units), and its radius."""
    return (at[0] + 0.9 * size, at[1]), 0.42 * size
