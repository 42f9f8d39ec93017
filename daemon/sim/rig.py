"""The simulated rig: its layout in rig units, the seeded camera pose and look, and its calibration.

Rig units: x runs from the golfer toward the cup, y across the mat; the ramp is cut into three lanes across y.
The flat pose (a camera straight overhead) turns, scales and shifts the rig into the image, so the putt may
travel left-right, right-left, top-bottom or bottom-top; a perspective camera (`daemon.sim.perspective`) sees
it from the golfer's end or from above with a tilt, and the ball's size then follows its distance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from daemon.sim.perspective import FLAT, CameraChoice, Projection, place_camera, resolve
from daemon.vision.calibration import Calibration, Polygon, Region

# The layout in rig units (about pixels at scale 1).
LEFT_OF_MAT = ((0, 0), (110, 0), (110, 300), (0, 300))
MAT = ((115, 0), (360, 0), (360, 300), (115, 300))
RAMP = ((365, 90), (490, 90), (490, 300), (365, 300))
CATCH = ((496, 70), (536, 70), (536, 322), (496, 322))
RETURN_TRACK = ((370, 310), (482, 310), (482, 338), (370, 338))
IGNORE_AREA = ((0, 312), (360, 312), (360, 400), (0, 400))
HOLE_CENTRE = (430.0, 195.0)
RIG_SIZE = (536.0, 400.0)
REST_SPOT = (335.0, 280.0)  # where a ball coming off the return track stops on the mat
RETURN_IN = (476.0, 324.0)  # where the return track starts, under the cup and the catch
RETURN_OUT = (376.0, 324.0)


@dataclass(frozen=True, slots=True)
class Look:
    """Colours and lighting of one scene (BGR)."""

    mat: tuple[int, int, int]
    ramp: tuple[int, int, int]
    floor: tuple[int, int, int]
    catch: tuple[int, int, int]
    track: tuple[int, int, int]
    ball: tuple[int, int, int]
    light: float  # overall brightness gain
    tint: tuple[float, float, float]  # per-channel gain
    texture: float  # strength of the mat texture
    noise: float  # sensor noise sigma
    drift_period: float  # seconds of one slow lighting cycle
    drift_amount: float
    flicker: float
    sheen: tuple[int, int, int] = (252, 252, 252)  # the lamp's highlight on the ball


@dataclass(frozen=True, slots=True)
class Pose:
    """Where the rig lands in the image."""

    angle: float  # degrees, counter-clockwise in rig units mapped to image
    scale: float
    offset: tuple[float, float]


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything fixed about one simulated rig and camera."""

    seed: int
    width: int
    height: int
    fps: float
    pose: Pose
    look: Look
    ball_diameter: float  # image pixels (for a perspective camera: at the rig's middle)
    calibration: Calibration
    camera: Projection | None = None  # None: the flat pose alone, straight overhead

    @property
    def ball_radius_units(self) -> float:
        return self.ball_diameter / 2 / self.pose.scale

    @property
    def cup_radius_units(self) -> float:
        return 1.27 * self.ball_diameter / self.pose.scale

    @property
    def camera_kind(self) -> str:
        """How the camera looks at the rig: "top", "tilted" (overhead, askew) or "oblique" (golfer's end)."""
        if self.camera is None:
            return "top"
        return "oblique" if self.camera.oblique else "tilted"

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """A point of the mat, in rig units, to image pixels."""
        if self.camera is None:
            return _apply(self.pose, x, y)
        return self.camera.project(x, y)

    def ball_centre(self, x: float, y: float) -> tuple[float, float]:
        """Image position of the centre of a ball standing on the mat at (x, y): one radius above it."""
        if self.camera is None:
            return _apply(self.pose, x, y)
        return self.camera.project(x, y, -self.ball_radius_units)

    def ball_radius(self, x: float, y: float) -> float:
        """Image radius of a ball standing on the mat at (x, y)."""
        if self.camera is None:
            return self.ball_diameter / 2
        return self.ball_radius_units * self.camera.scale_at(x, y, -self.ball_radius_units)


def _apply(pose: Pose, x: float, y: float) -> tuple[float, float]:
    a = math.radians(pose.angle)
    cx, cy = x - RIG_SIZE[0] / 2, y - RIG_SIZE[1] / 2
    return (
        pose.offset[0] + pose.scale * (cx * math.cos(a) - cy * math.sin(a)),
        pose.offset[1] + pose.scale * (cx * math.sin(a) + cy * math.cos(a)),
    )


def _colour(rng: np.random.Generator, base: tuple[int, int, int], spread: int) -> tuple[int, int, int]:
    b, g, r = (int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in base)
    return b, g, r


def draw_look(rng: np.random.Generator) -> Look:
    """Random colours and lighting."""
    return Look(
        mat=_colour(rng, (60, 140, 50), 30),
        ramp=_colour(rng, (70, 120, 60), 30),
        floor=_colour(rng, (110, 120, 130), 50),
        catch=_colour(rng, (35, 35, 40), 15),
        track=_colour(rng, (90, 90, 95), 25),
        ball=_colour(rng, (238, 240, 242), 12),
        light=float(rng.uniform(0.75, 1.15)),
        tint=(float(rng.uniform(0.9, 1.1)), 1.0, float(rng.uniform(0.9, 1.1))),
        texture=float(rng.uniform(4, 14)),
        noise=float(rng.uniform(2, 6)),
        drift_period=float(rng.uniform(30, 120)),
        drift_amount=float(rng.uniform(0.02, 0.08)),
        flicker=float(rng.uniform(0.0, 0.02)),
    )


def _fit_pose(rng: np.random.Generator, width: int, height: int, angle: float, scale: float) -> Pose:
    corners = [
        _apply(Pose(angle, scale, (0.0, 0.0)), x, y) for x in (0, RIG_SIZE[0]) for y in (0, RIG_SIZE[1])
    ]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    margin = 4.0
    lo_x, hi_x = margin - min(xs), width - margin - max(xs)
    lo_y, hi_y = margin - min(ys), height - margin - max(ys)
    return Pose(angle, scale, (float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))))


def _rig_bounds(angle: float) -> tuple[float, float]:
    corners = [_apply(Pose(angle, 1.0, (0.0, 0.0)), x, y) for x in (0, RIG_SIZE[0]) for y in (0, RIG_SIZE[1])]
    return max(c[0] for c in corners) - min(c[0] for c in corners), max(c[1] for c in corners) - min(
        c[1] for c in corners
    )


def make_scene(
    seed: int,
    width: int = 640,
    height: int = 480,
    fps: float = 30.0,
    *,
    vary_pose: bool = True,
    camera: CameraChoice = FLAT,
) -> Scene:
    """The scene a seed draws. With vary_pose=False: the default rig, putts travelling left to right.

    CAMERA other than the flat top-down one draws the camera from its own stream of the seed, so a seed's
    colours and lighting stay the same whichever camera sees them.
    """
    rng = np.random.default_rng(seed)
    look = draw_look(rng)
    chosen = resolve(camera, np.random.default_rng([seed, 3]))
    if not chosen.flat:
        return _perspective_scene(seed, width=width, height=height, fps=fps, look=look, chosen=chosen)
    angle = float(90 * rng.integers(0, 4) + rng.uniform(-6, 6)) if vary_pose else 0.0
    bw, bh = _rig_bounds(angle)
    fit = min((width - 8) / bw, (height - 8) / bh)
    if vary_pose:
        pose = _fit_pose(rng, width, height, angle, float(fit * rng.uniform(0.8, 1.0)))
        ball = float(rng.uniform(8, 20))
    else:
        pose = Pose(angle, fit * 0.95, (width / 2, height / 2))
        ball = 12.0
    calibration = rig_calibration(lambda x, y: _apply(pose, x, y), 1.27 * ball / pose.scale, width, height)
    return Scene(seed, width, height, fps, pose, look, ball, calibration)


def _perspective_scene(
    seed: int, *, width: int, height: int, fps: float, look: Look, chosen: CameraChoice
) -> Scene:
    rng = np.random.default_rng([seed, 4])
    corners = [(x, y) for x in (0.0, RIG_SIZE[0]) for y in (0.0, RIG_SIZE[1])]
    camera = place_camera(chosen, rng, corners, (width, height))
    middle = (RIG_SIZE[0] / 2, RIG_SIZE[1] / 2)
    # The pose holds the scale at the rig's middle, which sets the ball's and the cup's size in rig units.
    pose = Pose(0.0, camera.scale_at(*middle), camera.project(*middle))
    ball = float(rng.uniform(8, 20))
    # Focused on the rig's middle: the near and far ends of a long view are a little soft.
    defocus = float(np.random.default_rng([seed, 5]).uniform(0.0, 4.0))
    camera = replace(camera, focus_scale=pose.scale, defocus=defocus)
    calibration = rig_calibration(camera.project, 1.27 * ball / pose.scale, width, height)
    return Scene(seed, width, height, fps, pose, look, ball, calibration, camera)


def rig_calibration(
    to_image: Callable[[float, float], tuple[float, float]], cup_radius: float, width: int, height: int
) -> Calibration:
    """The calibration a user would click for this rig, lanes and quadrants derived the Proof of Putt way."""

    def poly(points: tuple[tuple[float, float], ...]) -> Polygon:
        out = []
        for x, y in points:
            ix, iy = to_image(x, y)
            out.append((round(min(max(ix, 0), width - 1)), round(min(max(iy, 0), height - 1))))
        return tuple(out)

    cx, cy = HOLE_CENTRE
    hole = tuple(
        (cx + cup_radius * math.cos(2 * math.pi * i / 12), cy + cup_radius * math.sin(2 * math.pi * i / 12))
        for i in range(12)
    )
    clicked = {
        Region.MAT: poly(MAT),
        Region.RAMP: poly(RAMP),
        Region.HOLE: poly(hole),
        Region.LEFT_OF_MAT: poly(LEFT_OF_MAT),
        Region.CATCH: poly(CATCH),
        Region.RETURN_TRACK: poly(RETURN_TRACK),
        Region.IGNORE_AREA: poly(IGNORE_AREA),
    }
    return Calibration.from_clicked(clicked, -1, (width, height), "simulated")
