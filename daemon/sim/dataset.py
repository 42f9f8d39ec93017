"""Detector training data: single frames of many random scenes, YOLO-labelled (class 0 = ball).

Each image is a new scene (colours, lighting, pose, ball size) with balls where a camera would see them (mat,
ramp, cup edge, catch, return track, floor), some rolling fast, some half hidden by a foot or the putter, and
hard negatives with no ball at all but white specks. `meta.jsonl` says what each image holds.

With `from_clips`, images are instead frames of scripted clips (the same sessions `simulate --out` renders),
which is what the daemon's camera shows: seeds SEED*1000 + k, FRAMES_PER_CLIP frames each. A share of either
kind is seen by a camera at an angle (`daemon.sim.perspective`) instead of straight from above, and a share
gets each harder look of `daemon.sim.realism` (a look-alike putter head lies on the mat away from the balls).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from daemon.atomicfile import write_atomic, write_text_atomic
from daemon.models import Box
from daemon.progress import Progress
from daemon.sim.clip import ClipSpec, build_clip
from daemon.sim.motion import BallState
from daemon.sim.perspective import OVERHEAD_TILT, CameraChoice
from daemon.sim.realism import PLAIN, Extras, Realism, surround
from daemon.sim.render import Renderer
from daemon.sim.rig import Scene, make_scene
from daemon.sim.script import Occluder
from daemon.sim.truth import BallView

CROP_MARGIN = 24  # the detector's default margin around the calibrated rig
FRAMES_PER_CLIP = 12
# Most of a clip's time the balls rest, and resting balls are already found every time; rolling balls,
# blurred and over every part of the rig, are what the detector misses, so clip frames favour them.
STILL_FRAME_SHARE = 0.3
# With a speed floor no simulated ball reaches, clip after clip would yield nothing: give up after these.
BARREN_CLIPS = 20
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
    camera: str = "top"  # "top", "tilted" (overhead, askew) or "oblique" (from the golfer's end)
    lookalikes: tuple[Box, ...] = ()  # the putter's look-alike inserts in view: not balls


def _random_spot(rng: np.random.Generator) -> tuple[float, float]:
    # mat, ramp, catch, return track, left of the mat, anywhere (floor included)
    areas = (((120, 355), (5, 295)), ((370, 485), (95, 295)), ((500, 532), (80, 315)),
             ((375, 478), (314, 334)), ((5, 105), (5, 295)), ((-20, 560), (-30, 420)))  # fmt: skip
    (x0, x1), (y0, y1) = areas[int(rng.choice(len(areas), p=[0.35, 0.3, 0.08, 0.07, 0.05, 0.15]))]
    return float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))


# Pale ground in a scene with the light surround: the floor round the rig (left of the mat, the golfer's
# side, beyond the ramp, the track and the catch) and, when they are pale plastic too, the catch tray and the
# return track.
_FLOOR_SPOTS = (((8, 102), (8, 292)), ((8, 352), (320, 392)), ((372, 484), (8, 82)), ((372, 530), (346, 392)),
                ((502, 530), (8, 62)))  # fmt: skip
_TRAY_SPOTS = (((502, 530), (78, 314)), ((376, 476), (316, 332)))


def _pale_spot(rng: np.random.Generator, *, pale_tray: bool) -> tuple[float, float]:
    areas = _FLOOR_SPOTS + _TRAY_SPOTS if pale_tray else _FLOOR_SPOTS
    # When the tray is pale it takes half the balls: a ball lies there after every catch.
    weights = [0.5 / len(_FLOOR_SPOTS)] * len(_FLOOR_SPOTS) + [0.25, 0.25] if pale_tray else None
    (x0, x1), (y0, y1) = areas[int(rng.choice(len(areas), p=weights))]
    return float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))


def camera_for(seed: int, oblique_share: float) -> CameraChoice:
    """The camera of dataset scene SEED: with probability OBLIQUE_SHARE one seen at an angle (two in three
    from the golfer's end, the others from above with a tilt), else the flat top-down pose."""
    rng = np.random.default_rng([seed, 10])
    if rng.random() >= oblique_share:
        return CameraChoice()
    if rng.random() < 2 / 3:
        return CameraChoice("oblique")
    return CameraChoice("top", float(rng.uniform(*OVERHEAD_TILT)))


def render_example(
    seed: int,
    crop_share: float = 0.0,
    oblique_share: float = 0.0,
    realism: Realism = PLAIN,
    pale_share: float = 0.0,
) -> tuple[np.ndarray, DatasetImage]:
    """One random scene with 0-4 balls; boxes are the exact drawn discs, clipped to the frame.

    With probability CROP_SHARE the image is cut to the calibrated rig plus the detector's margin, which is
    what the daemon's detector sees; with probability OBLIQUE_SHARE the rig is seen at an angle. REALISM
    gives the share of images with each harder look; in a scene with the light surround each ball lies on
    its pale floor or tray with probability PALE_SHARE.
    """
    rng = np.random.default_rng([seed, 7])
    width, height = _SIZES[int(rng.integers(len(_SIZES)))]
    scene = make_scene(seed, width, height, camera=camera_for(seed, oblique_share))
    extras = Extras.draw(realism, seed)
    renderer = Renderer(scene, seed, noise_banks=1, extras=extras)
    negative = rng.random() < 0.08
    count = 0 if negative else int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
    # A stream of its own, so PALE_SHARE 0 renders exactly what it rendered before.
    pale_rng = np.random.default_rng([seed, 15])
    pale_tray = surround(scene, extras).look.catch != scene.look.catch
    views = []
    for i in range(count):
        x, y = _random_spot(rng)
        speed = float(rng.choice([0.0, 0.0, rng.uniform(50, 400)]))
        heading = float(rng.uniform(-np.pi, np.pi))
        if extras.light_surround and pale_rng.random() < pale_share:
            x, y = _pale_spot(pale_rng, pale_tray=pale_tray)
        views.append(_ball_view(scene, i + 1, BallState((x, y), True, speed, heading)))
    occluders = []
    occluded = bool(views) and rng.random() < 0.15
    if occluded:
        target = views[0].state.position
        d = scene.ball_radius_units * 2
        kind = "foot" if rng.random() < 0.5 else "putter"
        near = (target[0] - float(rng.uniform(1.0, 1.6)) * d, target[1] + float(rng.uniform(-0.3, 0.3)) * d)
        occluders.append((Occluder(kind, 0.0, 1.0, near, near, 1.6 * d if kind == "foot" else d), near))
    if extras.second_ball or extras.lookalike:
        _harder(scene, extras, views, occluders)
    image = renderer.render(float(rng.uniform(0, 60)), views, occluders)
    crop = np.random.default_rng([seed, 8]).random() < crop_share
    return _labelled(f"sim_{seed:07d}", seed, image, scene, views, crop=crop, occluded=occluded,
                     inserts=_inserts(renderer, occluders))  # fmt: skip


def _inserts(renderer: Renderer, occluders: list[tuple[Occluder, tuple[float, float]]]) -> tuple[Box, ...]:
    return tuple(box for box in (renderer.insert_box(o, at) for o, at in occluders) if box is not None)


def _harder(
    scene: Scene,
    extras: Extras,
    views: list[BallView],
    occluders: list[tuple[Occluder, tuple[float, float]]],
) -> None:
    """A second ball right next to one of VIEWS, and a look-alike putter head away from every ball."""
    rng = np.random.default_rng([extras.seed, 14])
    d = scene.ball_radius_units * 2
    if extras.second_ball and views:
        x, y = views[int(rng.integers(len(views)))].state.position
        a = float(rng.uniform(-np.pi, np.pi))
        gap = float(rng.uniform(1.0, 1.5)) * d
        beside = BallState((x + gap * np.cos(a), y + gap * np.sin(a)), True, 0.0, 0.0)
        views.append(_ball_view(scene, len(views) + 1, beside))
    if extras.lookalike and rng.random() < 0.7:
        at = (float(rng.uniform(130, 345)), float(rng.uniform(15, 285)))
        if all(np.hypot(at[0] - v.state.position[0], at[1] - v.state.position[1]) > 4 * d for v in views):
            occluders.append((Occluder("putter", 0.0, 1.0, at, at, d), at))


def _ball_view(scene: Scene, ball_id: int, state: BallState) -> BallView:
    cx, cy = scene.ball_centre(*state.position)
    r = scene.ball_radius(*state.position)
    return BallView(ball_id, Box(cx - r, cy - r, cx + r, cy + r), state, False)


def _labelled(
    name: str,
    seed: int,
    image: np.ndarray,
    scene: Scene,
    views: list[BallView],
    *,
    crop: bool,
    occluded: bool,
    inserts: tuple[Box, ...] = (),
) -> tuple[np.ndarray, DatasetImage]:
    """IMAGE with the boxes of VIEWS and INSERTS clipped to it, cut to the rig plus the detector's margin if
    CROP."""
    height, width = image.shape[:2]
    x1 = y1 = 0
    if crop:
        x1, y1, x2, y2 = scene.calibration.bounds()
        x1, y1 = max(x1 - CROP_MARGIN, 0), max(y1 - CROP_MARGIN, 0)
        x2, y2 = min(x2 + CROP_MARGIN + 1, width), min(y2 + CROP_MARGIN + 1, height)
        image, width, height = image[y1:y2, x1:x2], x2 - x1, y2 - y1
    seen = [v for v in views if _in_view(_shifted(v.box, x1, y1), width, height)]
    boxes = tuple(_clipped(_shifted(v.box, x1, y1), width, height) for v in seen)
    lookalikes = tuple(
        _clipped(b, width, height)
        for b in (_shifted(i, x1, y1) for i in inserts)
        if _in_view(b, width, height)
    )
    moving = tuple(v.state.speed > 0 for v in seen)
    return image.copy(), DatasetImage(
        name, seed, boxes, moving, occluded, not boxes, scene.camera_kind, lookalikes
    )


def _shifted(box: Box, dx: float, dy: float) -> Box:
    return box if not (dx or dy) else Box(box.x1 - dx, box.y1 - dy, box.x2 - dx, box.y2 - dy)


def _in_view(box: Box, width: int, height: int) -> bool:
    return box.x2 > 2 and box.y2 > 2 and box.x1 < width - 2 and box.y1 < height - 2


def _clipped(box: Box, width: int, height: int) -> Box:
    return Box(max(box.x1, 0), max(box.y1, 0), min(box.x2, width), min(box.y2, height))


def class_names(*, lookalike_class: bool) -> dict[int, str]:
    """The classes of a dataset: the ball, and with LOOKALIKE_CLASS the putter's look-alike insert."""
    return {0: "ball", 1: "lookalike"} if lookalike_class else {0: "ball"}


class SpeedNotReachedError(ValueError):
    """No simulated clip yields a frame that a dataset's filter (speed floor, putter in view) asks for."""


def image_speed(views: list[BallView], later: list[BallView], fps: float) -> float:
    """The fastest ball of VIEWS, in image pixels a second, from where LATER (one frame on) shows it."""
    after = {v.ball_id: v.box.center for v in later}
    return max(
        (
            fps * math.hypot(after[v.ball_id].x - v.box.center.x, after[v.ball_id].y - v.box.center.y)
            for v in views
            if v.ball_id in after
        ),
        default=0.0,
    )


def clip_examples(
    seed: int,
    images: int,
    crop_share: float,
    oblique_share: float = 0.0,
    realism: Realism = PLAIN,
    *,
    min_speed: float = 0.0,
    putter_frames: bool = False,
) -> Iterator[tuple[np.ndarray, DatasetImage]]:
    """IMAGES frames of clips SEED*1000 + k, FRAMES_PER_CLIP a clip, a few with no ball in play; a clip is
    seen at an angle with probability OBLIQUE_SHARE.

    Frames where a foot or putter covers a ball are left out: a half-hidden ball has no right label. Of the
    frames where every ball rests, only STILL_FRAME_SHARE are kept. With MIN_SPEED, only frames where a ball
    moves at least that many image pixels a second are kept. With PUTTER_FRAMES, only frames with the putter
    head in the picture, all of them though the ball rests: the putter at address beside its ball, and its
    look-alike insert with it, is a short moment of each putt that the still-frame share would mostly drop.
    """
    clip = barren = 0
    while images > 0:
        if barren == BARREN_CLIPS:
            wanted = "the putter in view" if putter_frames else f"a ball at {min_speed:g} px/s"
            raise SpeedNotReachedError(f"no frame of {BARREN_CLIPS} clips in a row has {wanted}")
        clip_seed = seed * 1000 + clip
        camera = camera_for(clip_seed, oblique_share)
        spec = ClipSpec(seed=clip_seed, putts=6, camera=camera, realism=realism)
        script, renderer, timeline = build_clip(spec)
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
            occluders = timeline.occluders(t)
            if putter_frames:
                if not any(occluder.kind == "putter" for occluder, _ in occluders):
                    continue
            elif views and all(v.state.speed == 0 for v in views) and rng.random() > STILL_FRAME_SHARE:
                continue
            if min_speed and image_speed(views, timeline.balls(t + 1 / fps), fps) < min_speed:
                continue
            image = renderer.render(t, views, occluders)
            crop = rng.random() < crop_share
            yield _labelled(f"clip_{clip_seed:07d}_{f:05d}", clip_seed, image, scene, views, crop=crop,
                            occluded=False, inserts=_inserts(renderer, occluders))  # fmt: skip
            taken += 1
        images -= taken
        barren = 0 if taken else barren + 1
        clip += 1


def write_dataset(
    out: Path,
    images: int,
    seed: int,
    *,
    crop_share: float = 0.0,
    oblique_share: float = 0.0,
    realism: Realism = PLAIN,
    pale_share: float = 0.0,
    from_clips: bool = False,
    min_speed: float = 0.0,
    putter_frames: bool = False,
    lookalike_class: bool = False,
    progress: bool = True,
) -> list[DatasetImage]:
    """Write IMAGES examples (scene seeds SEED*100000 + i, or clip frames) as a YOLO dataset under OUT.

    PALE_SHARE is for random scenes only: a clip's balls go where its script sends them. MIN_SPEED (image
    pixels a second) and PUTTER_FRAMES are for clip frames only: a random scene's balls have no next frame,
    and its putter is not the golfer's. With LOOKALIKE_CLASS the putter's look-alike inserts are labelled
    too, as class 1 (`lookalike`): a detector that learns them as a class of their own is told where the thing
    most like a ball is, rather than only that it is not one.
    """
    if min_speed and not from_clips:
        raise ValueError("min_speed needs from_clips: a random scene's balls have no next frame")
    if putter_frames and not from_clips:
        raise ValueError("putter_frames needs from_clips: a random scene has no golfer's putter")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    bar = Progress("dataset", images) if progress else None
    written = []
    examples = (
        clip_examples(
            seed, images, crop_share, oblique_share, realism, min_speed=min_speed, putter_frames=putter_frames
        )
        if from_clips
        else (
            render_example(seed * 100_000 + i, crop_share, oblique_share, realism, pale_share)
            for i in range(images)
        )
    )
    for i, (image, info) in enumerate(examples):
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise OSError(f"cannot encode image {info.name}")
        write_atomic(out / "images" / f"{info.name}.jpg", jpeg.tobytes())
        h, w = image.shape[:2]
        labelled = [(0, b) for b in info.balls] + (
            [(1, b) for b in info.lookalikes] if lookalike_class else []
        )
        lines = [
            f"{c} {b.center.x / w:.6f} {b.center.y / h:.6f} {b.width / w:.6f} {b.height / h:.6f}\n"
            for c, b in labelled
        ]
        write_text_atomic(out / "labels" / f"{info.name}.txt", "".join(lines))
        written.append(info)
        if bar is not None:
            bar.update(i + 1)
    if bar is not None:
        bar.close()
    meta = "".join(
        json.dumps({"name": d.name, "seed": d.seed, "balls": len(d.balls), "occluded": d.occluded,
                    "negative": d.negative, "camera": d.camera}) + "\n"
        for d in written
    )  # fmt: skip
    write_text_atomic(out / "meta.jsonl", meta)
    names = "".join(
        f"  {number}: {name}\n" for number, name in class_names(lookalike_class=lookalike_class).items()
    )
    write_text_atomic(
        out / "data.yaml", f"path: {out.resolve()}\ntrain: images\nval: images\nnames:\n{names}"
    )
    return written
