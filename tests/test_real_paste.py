"""Real balls pasted on the real white tables: where they land, what they look like, what is left alone."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tools.real_paste import read_labels, write_pasted
from tools.train_detector import REAL, real_split

TRAIN, _ = real_split(5)


def read(path: Path) -> np.ndarray:
    image: np.ndarray | None = cv2.imread(str(path))
    assert image is not None, path
    return image


def pasted_balls(out: Path, source: Path) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, float]]]:
    """The original image, its pasted copy and the copy's new balls as (x, y, diameter)."""
    original = read(source)
    copy = read(out / "images" / "train" / f"paste0_{source.stem}.png")
    height, width = original.shape[:2]
    own = read_labels(REAL / "labels" / f"{source.stem}.txt", width, height)
    labels = read_labels(out / "labels" / "train" / f"paste0_{source.stem}.txt", width, height)
    for kept, label in zip(own, labels, strict=False):
        assert (label.x, label.y, label.width) == pytest.approx((kept.x, kept.y, kept.width), abs=1e-3)
    return original, copy, [(round(b.x), round(b.y), b.width) for b in labels[len(own) :]]


def ring(image: np.ndarray, x: int, y: int, inner: float, outer: float) -> np.ndarray:
    """The pixels of IMAGE between radii INNER and OUTER round (x, y)."""
    ys, xs = np.ogrid[: image.shape[0], : image.shape[1]]
    distance = np.hypot(xs - x, ys - y)
    pixels: np.ndarray = image[(distance >= inner) & (distance < outer)]
    return pixels


def test_pasted_copies_lay_real_balls_on_the_white_table_and_leave_the_rest(tmp_path: Path) -> None:
    sources = TRAIN[:6]
    assert write_pasted(sources, REAL / "labels", tmp_path, 1, seed=3) == len(sources)
    for source in sources:
        original, copy, balls = pasted_balls(tmp_path, source)
        assert balls
        untouched = np.ones(original.shape[:2], bool)
        for x, y, diameter in balls:
            # Round it, before the paste: bright, colourless table.
            table = cv2.cvtColor(ring(original, x, y, diameter, 1.5 * diameter)[None], cv2.COLOR_BGR2HSV)[0]
            assert np.median(table[:, 2]) >= 165
            assert np.median(table[:, 1]) <= 40
            # Its core: a real ball's pixels, a light grey darker than the bright table, not the mat's green.
            core = ring(copy, x, y, 0, 0.3 * diameter).astype(float)
            assert 120 < core.mean() < 245
            assert np.abs(core - ring(original, x, y, 0, 0.3 * diameter)).mean() > 5
            assert core[:, 1].mean() < core[:, [0, 2]].mean() + 12
            cv2.circle(untouched, (x, y), round(diameter * 1.6), 0, -1)
        assert (copy[untouched] == original[untouched]).all()


def test_pasted_balls_keep_clear_of_each_other_and_of_the_images_own(tmp_path: Path) -> None:
    sources = TRAIN[:10]
    write_pasted(sources, REAL / "labels", tmp_path, 1, seed=5)
    for source in sources:
        original, _, balls = pasted_balls(tmp_path, source)
        height, width = original.shape[:2]
        own = [
            (b.x, b.y, b.width) for b in read_labels(REAL / "labels" / f"{source.stem}.txt", width, height)
        ]
        for i, (x, y, diameter) in enumerate(balls):
            for other_x, other_y, other_diameter in own + balls[i + 1 :]:
                assert np.hypot(x - other_x, y - other_y) > 2 * max(diameter, other_diameter)


def test_the_same_seed_pastes_the_same_copies_and_another_seed_others(tmp_path: Path) -> None:
    sources = TRAIN[:3]
    for folder, seed in (("a", 1), ("b", 1), ("c", 2)):
        write_pasted(sources, REAL / "labels", tmp_path / folder, 1, seed=seed)

    def contents(folder: str) -> list[bytes]:
        return [path.read_bytes() for path in sorted((tmp_path / folder).rglob("*.*"))]

    assert contents("a") == contents("b")
    assert contents("a") != contents("c")


def test_an_image_with_no_white_table_gets_no_copy(tmp_path: Path) -> None:
    # A green mat to the edges with one white ball on it: a ball to cut, no table to lay it on.
    image = np.full((480, 640, 3), (40, 140, 30), np.uint8)
    cv2.circle(image, (320, 240), 10, (235, 235, 235), -1)
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "mat.png"), image)
    (tmp_path / "in" / "mat.txt").write_text("0 0.5 0.5 0.03125 0.041667\n")
    assert write_pasted([tmp_path / "in" / "mat.png"], tmp_path / "in", tmp_path / "out", 3, seed=0) == 0
    assert not list((tmp_path / "out").rglob("*.png"))
