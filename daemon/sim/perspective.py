"""A pinhole camera over the simulated rig: where it stands and looks, and where rig points land in the image.

World axes are rig units: x toward the cup, y across the mat, z *down* into the floor, so that a camera
straight overhead sees x to the right and y downward, as the flat top-down pose does; a point h above the mat
has z = -h.
The projection is one 3x4 matrix: the mat itself is seen through the homography of its first, second and
fourth columns, and a ball's centre, one radius above the mat, lands a little toward the image's top for a
camera at the golfer's end, as it does in a real picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

CameraKind = Literal["top", "oblique", "random"]
XY = tuple[float, float]
# Degrees from straight down. A camera at the golfer's end looks down the mat at 25 to 60 degrees; an
# overhead one is mounted a little askew (past about 20 degrees the perspective turns the cup's quadrants far
# enough that a make cannot always be scripted to enter a given one).
OBLIQUE_TILT = (30.0, 65.0)
OVERHEAD_TILT = (5.0, 15.0)


@dataclass(frozen=True, slots=True)
class CameraChoice:
    """Which camera a scene is seen by; TILT is degrees from straight down, None to draw it from the seed.

    "top" with no tilt is the flat top-down pose; "top" with a tilt an overhead camera turned that far in a
    random direction; "oblique" a camera behind the golfer looking down the mat; "random" one of the three.
    """

    kind: CameraKind = "top"
    tilt: float | None = None

    @property
    def flat(self) -> bool:
        """Whether this is the plain top-down pose (no perspective at all)."""
        return self.kind == "top" and not self.tilt


FLAT = CameraChoice()


@dataclass(frozen=True, slots=True)
class Projection:
    """A 3x4 camera matrix (row-major), its focal length in pixels and how far out of focus it gets."""

    matrix: tuple[float, ...]
    focal: float
    tilt: float  # degrees from straight down
    oblique: bool  # standing at the golfer's end rather than overhead
    focus_scale: float = 1.0  # pixels per rig unit on the plane in focus
    defocus: float = 0.0  # blur sigma, in pixels, where the scale is twice the one in focus

    def project(self, x: float, y: float, z: float = 0.0) -> XY:
        """Image pixel of the world point (x, y, z)."""
        m = self.matrix
        w = m[8] * x + m[9] * y + m[10] * z + m[11]
        return (m[0] * x + m[1] * y + m[2] * z + m[3]) / w, (m[4] * x + m[5] * y + m[6] * z + m[7]) / w

    def scale_at(self, x: float, y: float, z: float = 0.0) -> float:
        """Pixels per rig unit of a small thing at (x, y, z) facing the camera: focal length over depth."""
        m = self.matrix
        return self.focal / (m[8] * x + m[9] * y + m[10] * z + m[11])

    def blur_at(self, x: float, y: float, z: float = 0.0) -> float:
        """Defocus blur (Gaussian sigma, pixels) of a thing at (x, y, z): none on the plane in focus."""
        return self.defocus * abs(self.scale_at(x, y, z) / self.focus_scale - 1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / float(np.linalg.norm(v))


def _rotation(forward: np.ndarray, down_hint: np.ndarray) -> np.ndarray:
    """Rows right, down, forward of a camera looking along FORWARD with image-down closest to DOWN_HINT."""
    down = _unit(down_hint - float(down_hint @ forward) * forward)
    return np.stack([np.cross(down, forward), down, forward])


def resolve(choice: CameraChoice, rng: np.random.Generator) -> CameraChoice:
    """A concrete camera for CHOICE: "random" (40% flat, 20% tilted overhead, 40% oblique) and a missing
    tilt are drawn from RNG; a given tilt holds for whichever camera "random" draws, unless that is flat.
    """
    if choice.kind == "top":
        return choice
    if choice.kind == "oblique":
        return (
            choice if choice.tilt is not None else CameraChoice("oblique", float(rng.uniform(*OBLIQUE_TILT)))
        )
    pick, drawn = float(rng.random()), choice.tilt
    if pick < 0.4:
        return CameraChoice("top")
    if pick < 0.6:
        return CameraChoice("top", drawn if drawn is not None else float(rng.uniform(*OVERHEAD_TILT)))
    return CameraChoice("oblique", drawn if drawn is not None else float(rng.uniform(*OBLIQUE_TILT)))


def place_camera(
    choice: CameraChoice, rng: np.random.Generator, corners: list[XY], size: tuple[int, int]
) -> Projection:
    """A camera of a concrete CHOICE aimed at the rig whose outline is CORNERS, fitted into an image of SIZE.

    The camera stands one to two rig diagonals from the rig's middle; the focal length and the principal point
    are then set so the whole rig fills 80 to 100% of the image's width or height, at a random place in it.
    """
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    middle = np.array([(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, 0.0])
    diagonal = math.hypot(max(xs) - min(xs), max(ys) - min(ys))
    tilt = math.radians(choice.tilt or 0.0)
    if choice.kind == "oblique":
        yaw = math.radians(float(rng.uniform(-12, 12)))
        down_hint = np.array([0.0, 0.0, 1.0])  # the golfer's end at the bottom of the picture
        roll = float(rng.uniform(-4, 4))
        distance = diagonal * float(rng.uniform(1.1, 1.7))
    else:
        yaw = float(rng.uniform(0, 2 * math.pi))
        turn = math.radians(90 * int(rng.integers(0, 4)) + float(rng.uniform(-6, 6)))
        down_hint = np.array([math.sin(turn), math.cos(turn), 0.0])  # as the flat pose turns the rig
        roll = 0.0
        distance = diagonal * float(rng.uniform(1.2, 1.8))
    forward = np.array([math.sin(tilt) * math.cos(yaw), math.sin(tilt) * math.sin(yaw), math.cos(tilt)])
    target = middle + np.array([float(rng.uniform(-20, 20)), float(rng.uniform(-20, 20)), 0.0])
    rotation = _rotation(forward, down_hint)
    if roll:
        r = math.radians(roll)
        turn_image = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
        rotation = turn_image @ rotation
    position = target - distance * forward
    extrinsic = np.hstack([rotation, (-rotation @ position)[:, None]])
    seen = np.array([extrinsic @ np.array([x, y, 0.0, 1.0]) for x, y in corners])
    a, b = seen[:, 0] / seen[:, 2], seen[:, 1] / seen[:, 2]
    width, height = size
    focal = min((width - 8) / float(np.ptp(a)), (height - 8) / float(np.ptp(b))) * float(
        rng.uniform(0.8, 1.0)
    )
    u0 = float(rng.uniform(4 - focal * a.min(), width - 4 - focal * a.max()))
    v0 = float(rng.uniform(4 - focal * b.min(), height - 4 - focal * b.max()))
    intrinsic = np.array([[focal, 0.0, u0], [0.0, focal, v0], [0.0, 0.0, 1.0]])
    matrix = intrinsic @ extrinsic
    return Projection(
        tuple(float(v) for v in matrix.ravel()), focal, math.degrees(tilt), choice.kind == "oblique"
    )
