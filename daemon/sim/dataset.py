"""Detector training data: single frames of many random scenes, YOLO-labelled (class 0 = ball).

Each image is a new scene (colours, lighting, pose, ball size) with balls where a camera would see them (mat,
ramp, cup edge, catch, return track, floor), some rolling fast, some half hidden by a foot or the putter, and
hard negatives with no ball at all but white specks. `meta.jsonl` says what each image holds.

With `from_clips`, images are instead frames of scripted clips (the same sessions `simulate --out` renders),
which is what the daemon's camera shows: seeds SEED*1000 + k, FRAMES_PER_CLIP frames each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from daemon.atomicfile import write_atomic, write_text_atomic
from daemon.models import Box
from daemon.progress import Progress
from daemon.sim.clip import ClipSpec, build_clip
from daemon.sim.motion import BallState
from daemon.sim.render import Renderer
from daemon.sim.rig import Scene, make_scene
from daemon.sim.script import Occluder
from daemon.sim.truth import BallView

CROP_MARGIN = 24  # the detector's default margin around the calibrated rig
FRAMES_PER_CLIP = 12
# Most of a clip's time the balls rest, and resting balls are already found every time; rolling balls,
# blurred and over every part of the rig, are what the detector misses, so clip frames favour them.
STILL_FRAME_SHARE = 0.3
_SIZES = ((640, 480), (640, 480), (640, 480), (800, 600), (1280, 720), (960, 540))


@dataclass(frozen=True, slots=True)
class DatasetImage:
    """What one dataset image holds."""

    name: str
    seed: int
    balls: tuple[Box, ...]
    moving: tuple[bool, ...]  # drawn with motion blur
    occluded: bool
    negative: bool


def _random_spot(rng: np.random.Generator) -> tuple[float, float]:
    # mat, ramp, catch, return track, left of the mat, anywhere (floor included)
    areas = (((120, 355), (5, 295)), ((370, 485), (95, 295)), ((500, 532), (80, 315)),
             ((375, 478), (314, 334)), ((5, 105), (5, 295)), ((-20, 560), (-30, 420)))  # fmt: skip
    (x0, x1), (y0, y1) = areas[int(rng.choice(len(areas), p=[0.35, 0.3, 0.08, 0.07, 0.05, 0.15]))]
    return float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))


def render_example(seed: int, crop_share: float = 0.0) -> tuple[np.ndarray, DatasetImage]:
    """One random scene with 0-4 balls; boxes are the exact drawn discs, clipped to the frame.

    With probability CROP_SHARE the image is cut to the calibrated rig plus the detector's margin, which is
    what the daemon's detector sees.
    """
    rng = np.random.default_rng([seed, 7])
    width, height = _SIZES[int(rng.integers(len(_SIZES)))]
    scene = make_scene(seed, width, height)
    renderer = Renderer(scene, seed, noise_banks=1)
    negative = rng.random() < 0.08
    count = 0 if negative else int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
    r = scene.ball_diameter / 2
    views = []
    for i in range(count):
        x, y = _random_spot(rng)
        speed = float(rng.choice([0.0, 0.0, rng.uniform(50, 400)]))
        state = BallState((x, y), True, speed, float(rng.uniform(-np.pi, np.pi)))
        cx, cy = scene.to_image(x, y)
        views.append(BallView(i + 1, Box(cx - r, cy - r, cx + r, cy + r), state, False))
    occluders = []
    occluded = bool(views) and rng.random() < 0.15
    if occluded:
        target = views[0].state.position
        d = scene.ball_radius_units * 2
        kind = "foot" if rng.random() < 0.5 else "putter"
        near = (target[0] - float(rng.uniform(1.0, 1.6)) * d, target[1] + float(rng.uniform(-0.3, 0.3)) * d)
        occluders.append((Occluder(kind, 0.0, 1.0, near, near, 1.6 * d if kind == "foot" else d), near))
    image = renderer.render(float(rng.uniform(0, 60)), views, occluders)
    crop = np.random.default_rng([seed, 8]).random() < crop_share
    return _labelled(f"sim_{seed:07d}", seed, image, scene, views, crop=crop, occluded=occluded)


def _labelled(
    name: str,
    seed: int,
    image: np.ndarray,
    scene: Scene,
    views: list[BallView],
    *,
    crop: bool,
    occluded: bool,
) -> tuple[np.ndarray, DatasetImage]:
    """IMAGE with the boxes of VIEWS clipped to it, cut to the rig plus the detector's margin if CROP."""
    height, width = image.shape[:2]
    if crop:
        x1, y1, x2, y2 = scene.calibration.bounds()
        x1, y1 = max(x1 - CROP_MARGIN, 0), max(y1 - CROP_MARGIN, 0)
        x2, y2 = min(x2 + CROP_MARGIN + 1, width), min(y2 + CROP_MARGIN + 1, height)
        image, width, height = image[y1:y2, x1:x2], x2 - x1, y2 - y1
        views = [
            replace(v, box=Box(v.box.x1 - x1, v.box.y1 - y1, v.box.x2 - x1, v.box.y2 - y1)) for v in views
        ]
    seen = [
        v for v in views if v.box.x2 > 2 and v.box.y2 > 2 and v.box.x1 < width - 2 and v.box.y1 < height - 2
    ]
    boxes = tuple(
        Box(max(v.box.x1, 0), max(v.box.y1, 0), min(v.box.x2, width), min(v.box.y2, height)) for v in seen
    )
    moving = tuple(v.state.speed > 0 for v in seen)
    return image.copy(), DatasetImage(name, seed, boxes, moving, occluded, not boxes)


def clip_examples(seed: int, images: int, crop_share: float) -> Iterator[tuple[np.ndarray, DatasetImage]]:
    """IMAGES frames of clips SEED*1000 + k, FRAMES_PER_CLIP a clip, a few with no ball in play.

    Frames where a foot or putter covers a ball are left out: a half-hidden ball has no right label. Of the
    frames where every ball rests, only STILL_FRAME_SHARE are kept.
    """
    clip = 0
    while images > 0:
        clip_seed = seed * 1000 + clip
        script, renderer, timeline = build_clip(ClipSpec(seed=clip_seed, putts=6))
        fps, scene = script.scene.fps, script.scene
        rng = np.random.default_rng([clip_seed, 9])
        frames = rng.permutation(int(script.duration * fps))
        taken = 0
        for f in frames:
            if taken == min(FRAMES_PER_CLIP, images):
                break
            t = float(f) / fps
            views = timeline.balls(t)
            if any(v.occluded for v in views) or (not views and rng.random() > 0.05):
                continue
            if views and all(v.state.speed == 0 for v in views) and rng.random() > STILL_FRAME_SHARE:
                continue
            image = renderer.render(t, views, timeline.occluders(t))
            crop = rng.random() < crop_share
            yield _labelled(f"clip_{clip_seed:07d}_{f:05d}", clip_seed, image, scene, views, crop=crop,
                            occluded=False)  # fmt: skip
            taken += 1
        images -= taken
        clip += 1


def write_dataset(
    out: Path,
    images: int,
    seed: int,
    *,
    crop_share: float = 0.0,
    from_clips: bool = False,
    progress: bool = True,
) -> list[DatasetImage]:
    """Write IMAGES examples (scene seeds SEED*100000 + i, or clip frames) as a YOLO dataset under OUT."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    bar = Progress("dataset", images) if progress else None
    written = []
    examples = (
        clip_examples(seed, images, crop_share)
        if from_clips
        else (render_example(seed * 100_000 + i, crop_share) for i in range(images))
    )
    for i, (image, info) in enumerate(examples):
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise OSError(f"cannot encode image {info.name}")
        write_atomic(out / "images" / f"{info.name}.jpg", jpeg.tobytes())
        h, w = image.shape[:2]
        lines = [
            f"0 {b.center.x / w:.6f} {b.center.y / h:.6f} {b.width / w:.6f} {b.height / h:.6f}\n"
            for b in info.balls
        ]
        write_text_atomic(out / "labels" / f"{info.name}.txt", "".join(lines))
        written.append(info)
        if bar is not None:
            bar.update(i + 1)
    if bar is not None:
        bar.close()
    meta = "".join(
        json.dumps({"name": d.name, "seed": d.seed, "balls": len(d.balls), "occluded": d.occluded,
                    "negative": d.negative}) + "\n"
        for d in written
    )  # fmt: skip
    write_text_atomic(out / "meta.jsonl", meta)
    write_text_atomic(
        out / "data.yaml", f"path: {out.resolve()}\ntrain: images\nval: images\nnames:\n  0: ball\n"
    )
    return written
