"""Real balls on the real white tables: training images for the ball that lies on pale ground.

Every real training image shows a white table beside the green mat, but every labelled ball lies on the mat or
on dark cloth, so the detector has never seen a real ball on a light surface. `pasted_copies` copies each real
image and lays real balls cut from the same set of images on its white table: a disc cut inside the ball's
rim, scaled to the image's own balls, its tint, brightness and focus varied, over a soft shadow. The labels
are the image's own plus one per pasted ball. `write_pasted` writes them as a YOLO split for training (from
the training images); `bench.detector_accuracy` makes its own from the held-out images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# The table: bright and colourless. The green mat, the dark floor and the red robot parts are not.
TABLE_MIN_VALUE = 165
TABLE_MAX_SATURATION = 40
# A pasted ball keeps this many of its own diameters from any other ball, so no two labels overlap.
SPACING = 2.5
BALLS_PER_IMAGE = (1, 3)


@dataclass(frozen=True, slots=True)
class LabelBox:
    """One YOLO label in pixels: the ball's centre and the box's width and height."""

    x: float
    y: float
    width: float
    height: float

    def yolo_line(self, image_width: int, image_height: int) -> str:
        """The label as a line of a YOLO label file: class 0 and the box in image fractions."""
        return (
            f"0 {self.x / image_width:.6f} {self.y / image_height:.6f} "
            f"{self.width / image_width:.6f} {self.height / image_height:.6f}"
        )


@dataclass(frozen=True, slots=True)
class BallCut:
    """A real ball cut from its image: a square patch centred on the ball, and the ball's diameter in it."""

    patch: np.ndarray
    diameter: float


def read_labels(path: Path, image_width: int, image_height: int) -> list[LabelBox]:
    """The boxes of a YOLO label file, in pixels of an image of that size."""
    boxes = []
    for line in path.read_text().splitlines():
        if line.strip():
            _, x, y, w, h = (float(v) for v in line.split()[:5])
            boxes.append(LabelBox(x * image_width, y * image_height, w * image_width, h * image_height))
    return boxes


def cut_balls(image: np.ndarray, boxes: list[LabelBox]) -> list[BallCut]:
    """Square patches twice the ball's size round each labelled ball that lies wholly inside the image."""
    cuts = []
    height, width = image.shape[:2]
    for box in boxes:
        diameter = (box.width + box.height) / 2
        half = round(diameter)
        x, y = round(box.x), round(box.y)
        if half <= x < width - half and half <= y < height - half:
            cuts.append(BallCut(image[y - half : y + half, x - half : x + half].copy(), diameter))
    return cuts


def table_mask(image: np.ndarray) -> np.ndarray:
    """Where the image shows the white table (255) rather than mat, floor or machinery (0)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    table = (hsv[..., 2] >= TABLE_MIN_VALUE) & (hsv[..., 1] <= TABLE_MAX_SATURATION)
    mask = table.astype(np.uint8) * 255
    # Specks of white (the mat's stripes, reflections) are not a table a ball could lie on.
    opened: np.ndarray = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((9, 9), np.uint8))
    return opened


def _free_spots(table: np.ndarray, diameter: float, taken: list[LabelBox]) -> np.ndarray:
    """Pixel centres where a ball of DIAMETER and its shadow lie on the table, clear of the balls TAKEN."""
    reach = int(np.ceil(diameter))
    inside = cv2.erode(table, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    # Erosion counts the world beyond the frame as table; the patch must stay inside it.
    edge = reach + 2
    inside[:edge], inside[-edge:], inside[:, :edge], inside[:, -edge:] = 0, 0, 0, 0
    for box in taken:
        gap = SPACING * max(diameter, box.width, box.height)
        cv2.circle(inside, (round(box.x), round(box.y)), round(gap), 0, -1)
    ys, xs = np.nonzero(inside)
    return np.stack([xs, ys], axis=1)


def paste_ball(image: np.ndarray, cut: BallCut, at: LabelBox, rng: np.random.Generator) -> None:
    """Lay CUT on IMAGE centred and sized as the label AT, over a soft shadow; in place."""
    x, y, diameter = round(at.x), round(at.y), at.width
    scale = diameter / cut.diameter
    patch = cv2.resize(cut.patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    half = patch.shape[0] // 2
    region = image[y - half : y - half + patch.shape[0], x - half : x - half + patch.shape[1]]
    centre = (patch.shape[1] / 2 - 0.5, patch.shape[0] / 2 - 0.5)
    shape = region.shape[:2]
    # The shadow: darker table under the ball's lower side, as a ball under a ceiling lamp casts.
    shadow = np.zeros(shape, np.float32)
    offset = (diameter * rng.uniform(-0.3, 0.3), diameter * rng.uniform(0.1, 0.35))
    axes = (round(diameter * 0.55), round(diameter * 0.35))
    cv2.ellipse(
        shadow, (round(centre[0] + offset[0]), round(centre[1] + offset[1])), axes, 0, 0, 360, 1.0, -1
    )
    shadow = cv2.GaussianBlur(shadow, (0, 0), diameter * 0.15)
    darkening = 1 - rng.uniform(0.08, 0.3) * shadow[..., None]
    ball = np.zeros(shape, np.float32)
    # Cut inside the ball's rim: the rim's pixels are half the mat it was lying on, a green fringe on the
    # table; the blur gives the disc back a soft edge of table and ball.
    cv2.circle(ball, (round(centre[0]), round(centre[1])), max(1, round(diameter * 0.42)), 1.0, -1)
    ball = cv2.GaussianBlur(ball, (0, 0), max(0.7, diameter * 0.04))[..., None]
    # The green mat tints a ball's lower side; on a white table it is grey or white, and under a lamp
    # it may be as bright as the table.
    pixels = patch.astype(np.float32)
    grey = pixels.mean(axis=2, keepdims=True)
    pixels = grey + (pixels - grey) * rng.uniform(0.2, 1.0)
    pixels = np.clip(pixels * rng.uniform(0.9, 1.2), 0, 255)
    blended = region.astype(np.float32) * darkening * (1 - ball) + pixels * ball
    if rng.random() < 0.5:
        # Out of focus: a ball nearer the camera than the mat it was focused on.
        blended = cv2.GaussianBlur(blended, (0, 0), rng.uniform(0.5, 1.4))
    region[...] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def pasted_copy(
    image: np.ndarray, boxes: list[LabelBox], cuts: list[BallCut], rng: np.random.Generator
) -> tuple[np.ndarray, list[LabelBox]]:
    """IMAGE with real balls from CUTS pasted on its table, and its labels with theirs added."""
    out = image.copy()
    table = table_mask(image)
    sizes = [(box.width + box.height) / 2 for box in boxes] or [cut.diameter for cut in cuts]
    labels = list(boxes)
    for _ in range(rng.integers(BALLS_PER_IMAGE[0], BALLS_PER_IMAGE[1] + 1)):
        # Up to half again the image's own balls: a ball on the table's near edge is nearer the camera.
        diameter = float(np.median(sizes)) * rng.uniform(0.8, 1.5)
        spots = _free_spots(table, diameter, labels)
        if not len(spots):
            break
        x, y = (float(v) for v in spots[rng.integers(len(spots))])
        label = LabelBox(x, y, diameter, diameter)
        paste_ball(out, cuts[rng.integers(len(cuts))], label, rng)
        labels.append(label)
    return out, labels


@dataclass(frozen=True, slots=True)
class PastedCopy:
    """A copy of a real image with balls pasted on its table; its labels are the image's own, then theirs."""

    name: str
    source: Path  # the real image it is a copy of
    image: np.ndarray
    labels: list[LabelBox]
    pasted: int  # how many of the labels, at the end, are pasted balls


def pasted_copies(images: list[Path], labels_folder: Path, variants: int, seed: int) -> Iterator[PastedCopy]:
    """VARIANTS pasted copies of each of IMAGES, balls cut from IMAGES only; no copy of a tableless image."""
    loaded = []
    for path in images:
        image = cv2.imread(str(path))
        if image is None:
            raise ValueError(f"not an image: {path}")
        height, width = image.shape[:2]
        loaded.append((path, image, read_labels(labels_folder / f"{path.stem}.txt", width, height)))
    cuts = [cut for _, image, boxes in loaded for cut in cut_balls(image, boxes)]
    if not cuts:
        raise ValueError("no labelled ball to paste lies wholly inside its image")
    for index, (path, image, boxes) in enumerate(loaded):
        for variant in range(variants):
            rng = np.random.default_rng([seed, index, variant])
            pasted, labels = pasted_copy(image, boxes, cuts, rng)
            if len(labels) > len(boxes):
                yield PastedCopy(
                    f"paste{variant}_{path.stem}", path, pasted, labels, len(labels) - len(boxes)
                )


def write_pasted(
    images: list[Path], labels_folder: Path, out: Path, variants: int, seed: int, *, split: str = "train"
) -> int:
    """Write VARIANTS pasted copies of each of IMAGES into OUT/{images,labels}/SPLIT; returns how many.

    The balls are cut from IMAGES only, so pass the training images and never the held-out ones.
    """
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    written = 0
    for copy in pasted_copies(images, labels_folder, variants, seed):
        # PNG: a second JPEG pass would blur the real pixels the copy is made of.
        cv2.imwrite(str(out / "images" / split / f"{copy.name}.png"), copy.image)
        height, width = copy.image.shape[:2]
        lines = "".join(f"{label.yolo_line(width, height)}\n" for label in copy.labels)
        (out / "labels" / split / f"{copy.name}.txt").write_text(lines)
        written += 1
    return written
