"""Train the ball verifier: a small CNN on patches round what the detector finds, labelled ball or not.

    YOLO_OFFLINE=1 .venv/bin/python -m tools.train_verifier --out runs/verifier [--detector models/ball.onnx]
        [--seeds 60] [--frames 60] [--epochs 30]

The patches come the way the daemon will meet them: the detector runs on simulator clips (seeds of their
own, 90000 and up, validation 95000 and up; never a bench's) and on the 40 real training images and their
pasted copies, at a confidence below the daemon's so the near misses are seen too. A box on a ball is a
ball; a box on nothing is not; a box on a hidden ball, outside the rig or in the ignore area is left out.
Each putter's look-alike insert and each true ball add a patch of their own, nudged as detector boxes are.
The harvest is cached in OUT/patches-*.npz. The result, OUT/verifier.onnx, takes (N, 3, 48, 48) RGB in 0-1
and gives one logit per patch; OUT/verifier.json is its sidecar. The report prints, on the validation
patches, how many balls, look-alikes and other false alarms each threshold would drop. Ship it as
models/ball_verifier.onnx with `--ship` (the sidecar rewritten for the shipped name).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from bench.detection_score import label_box, watched
from bench.detector_accuracy import PLAIN_CLIPS, CropDetectors, SampledFrame, sampled_frames
from daemon.atomicfile import write_atomic
from daemon.commands.arguments import read_image
from daemon.models import Box, Frame
from daemon.sim.clip import ClipSpec
from daemon.sim.perspective import CameraChoice
from daemon.sim.realism import Realism, lookalike_insert
from daemon.vision.detector import BallDetector, DetectorConfig, file_sha256
from daemon.vision.verifier import CONTEXT, MIN_SIDE, PATCH, patch
from tools.real_paste import pasted_copies, read_labels
from tools.train_detector import REAL, real_split

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
HARVEST_CONFIDENCE = 0.2
TRAIN_SEED, VALIDATION_SEED = 90000, 95000
# Kinds of patch, for the report: a ball, an insert, anything else the detector took for a ball.
BALL, INSERT, OTHER = 0, 1, 2
SETS = {
    "plain": PLAIN_CLIPS,
    "oblique": ClipSpec(camera=CameraChoice("oblique")),
    "harder": ClipSpec(camera=CameraChoice("random"), realism=Realism.every(0.5)),
    "putter": ClipSpec(camera=CameraChoice("random"), realism=replace(Realism.every(0.3), lookalike=1.0)),
}


@dataclass
class Patches:
    """Patches (N, PATCH, PATCH, 3) BGR and the kind of each."""

    images: list[npt.NDArray[np.uint8]]
    kinds: list[int]

    def add(self, image: npt.NDArray[np.uint8], kind: int) -> None:
        self.images.append(image)
        self.kinds.append(kind)


def nudged(box: Box, rng: np.random.Generator) -> Box:
    """BOX moved and resized by as much as a detector's box on the same thing is."""
    w, h = box.width, box.height
    dx, dy = rng.normal(0, 0.08, 2) * (w, h)
    scale = float(np.exp(rng.normal(0, 0.1)))
    cx, cy = box.center.x + dx, box.center.y + dy
    return Box(cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2)


def insert_boxes(sampled: SampledFrame) -> list[Box]:
    """The image boxes of the putter's look-alike inserts in a frame."""
    if not sampled.extras.lookalike:
        return []
    boxes = []
    for occluder, at in sampled.occluders:
        if occluder.kind == "putter":
            (x, y), radius = lookalike_insert(at, occluder.size)
            cx, cy = sampled.scene.to_image(x, y)
            camera = sampled.scene.camera
            r = radius * (sampled.scene.pose.scale if camera is None else camera.scale_at(x, y))
            boxes.append(Box(cx - r, cy - r, cx + r, cy + r))
    return boxes


def harvest_frame(
    patches: Patches, image: npt.NDArray[np.uint8], found: list[Box], rng: np.random.Generator, *,
    balls: Sequence[Box], skip: Sequence[Box] = (), inserts: Sequence[Box] = (),
) -> None:  # fmt: skip
    """Label the detector's boxes in one frame, and add a nudged patch of each true ball and insert."""
    for box in found:
        if any(box.iou(b) >= 0.5 for b in balls):
            patches.add(patch(image, box), BALL)
        elif any(box.iou(b) >= 0.1 for b in (*balls, *skip)):
            continue  # a part of a ball, or a hidden one: neither answer is right
        else:
            near_insert = any(box.iou(i) >= 0.2 for i in inserts)
            patches.add(patch(image, box), INSERT if near_insert else OTHER)
    for ball in balls:
        patches.add(patch(image, nudged(ball, rng)), BALL)
    for insert in inserts:
        patches.add(patch(image, nudged(insert, rng)), INSERT)


@dataclass(frozen=True)
class Harvest:
    """Where and how much to harvest: the detector, clip seeds from FIRST_SEED, SEEDS clips of each set
    with FRAMES frames each, PUTTER_SEEDS clips more of the putter set's frames with a putter in view, and
    the real images REAL times each (0: none)."""

    detector: Path
    first_seed: int
    seeds: int
    frames: int
    putter_seeds: int
    real: int


def harvest_clips(plan: Harvest, patches: Patches, *, putter: bool) -> None:
    """Every set's clips, or with PUTTER the putter set's frames with a putter head in view."""
    detectors = CropDetectors(plan.detector, confidence=HARVEST_CONFIDENCE)
    for number, (name, look) in enumerate(SETS.items()):
        if putter and name != "putter":
            continue
        start = plan.first_seed + number * 1000 + (500 if putter else 0)
        seeds = plan.putter_seeds if putter else plan.seeds
        rng = np.random.default_rng(start)
        for sampled in sampled_frames(plan.frames * seeds, seeds, start, look, putter=putter):
            cal = sampled.scene.calibration
            found = [d.box for d in detectors.detect(sampled) if watched(cal, d.box)]
            balls = [b.box for b in sampled.balls if not b.occluded and watched(cal, b.box)]
            skip = [b.box for b in sampled.balls if b.occluded or not watched(cal, b.box)]
            harvest_frame(
                patches, sampled.image, found, rng, balls=balls, skip=skip, inserts=insert_boxes(sampled)
            )
        logger.info("%s clips from seed %d: %d patches so far", name, start, len(patches.kinds))


def harvest_real(detector: Path, patches: Patches, repeat: int) -> None:
    """The real training images and their pasted copies, REPEAT times each with fresh nudges."""
    train, _ = real_split(5)
    model = BallDetector.open(DetectorConfig(path=detector, confidence=HARVEST_CONFIDENCE))
    rng = np.random.default_rng(1)
    sources: list[tuple[npt.NDArray[np.uint8], list[Box]]] = []
    for path in train:
        image = read_image(path)
        h, w = image.shape[:2]
        labels = read_labels(REAL / "labels" / f"{path.stem}.txt", w, h)
        sources.append((image, [label_box(label) for label in labels]))
    sources.extend(
        (copy.image, [label_box(label) for label in copy.labels])
        for copy in pasted_copies(train, REAL / "labels", 4, 1)
    )
    for image, balls in sources:
        found = [d.box for d in model.detect(Frame(0, 0.0, image)).items]
        for _ in range(repeat):
            harvest_frame(patches, image, found, rng, balls=balls)


def cached(path: Path, build: Callable[[Patches], None]) -> Patches:
    """The patches saved at PATH, or BUILD's, saved there."""
    if path.exists():
        data = np.load(path)
        return Patches(list(data["images"]), [int(k) for k in data["kinds"]])
    patches = Patches([], [])
    build(patches)
    np.savez_compressed(path, images=np.stack(patches.images), kinds=np.array(patches.kinds, np.int8))
    return patches


def harvest(plan: Harvest, out: Path, split: str) -> Patches:
    """The patches of PLAN, each part cached as OUT/patches-SPLIT-PART.npz."""

    def base(patches: Patches) -> None:
        harvest_clips(plan, patches, putter=False)
        if plan.real:
            harvest_real(plan.detector, patches, plan.real)

    parts = [cached(out / f"patches-{split}-base.npz", base)]
    if plan.putter_seeds:
        putter = partial(harvest_clips, plan, putter=True)
        parts.append(cached(out / f"patches-{split}-putter.npz", putter))
    return Patches([i for p in parts for i in p.images], [k for p in parts for k in p.kinds])


def build_network() -> nn.Sequential:
    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(3, 16, 1), *block(16, 24, 2), *block(24, 24, 1), *block(24, 32, 2), *block(32, 48, 2),
        *block(48, 48, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, 1), nn.Flatten(0),
    )  # fmt: skip


def to_tensor(images: npt.NDArray[np.uint8]) -> torch.Tensor:
    """BGR (N, H, W, 3) bytes -> RGB (N, 3, H, W) floats in 0-1, as `daemon.vision.verifier` feeds them."""
    return torch.from_numpy(np.ascontiguousarray(images[:, :, :, ::-1].transpose(0, 3, 1, 2))).float() / 255


def augmented(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flips, quarter turns and a brightness and contrast change: none of them makes a ball a non-ball."""
    if torch.rand(1, generator=generator) < 0.5:
        batch = batch.flip(3)
    batch = torch.rot90(batch, int(torch.randint(0, 4, (1,), generator=generator)), (2, 3))
    n = batch.shape[0]
    gain = 1 + 0.25 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    shift = 0.1 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    return (batch * gain + shift).clamp(0, 1)


def balanced(patches: Patches, max_balls: int, seed: int) -> Patches:
    """Every patch that is no ball, and at most MAX_BALLS of the balls, drawn at random."""
    kinds = np.array(patches.kinds)
    balls = np.flatnonzero(kinds == BALL)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([np.flatnonzero(kinds != BALL), rng.permutation(balls)[:max_balls]])
    return Patches([patches.images[i] for i in keep], [patches.kinds[i] for i in keep])


def train(train_set: Patches, epochs: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images = to_tensor(np.stack(train_set.images))
    targets = torch.tensor([1.0 if k == BALL else 0.0 for k in train_set.kinds])
    net = build_network()
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    batch = 128
    steps = epochs * ((len(images) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
    loss_of = torch.nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for start in range(0, len(images), batch):
            index = order[start : start + batch]
            loss = loss_of(net(augmented(images[index], generator)), targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        logger.info("epoch %d: loss %.4f", epoch + 1, total / len(images))
    return net.eval()


def chances(net: nn.Sequential, patches: Patches) -> npt.NDArray[np.float32]:
    with torch.no_grad():
        logits = torch.cat(
            [
                net(to_tensor(np.stack(patches.images[i : i + 512])))
                for i in range(0, len(patches.images), 512)
            ]
        )
    chance: npt.NDArray[np.float32] = torch.sigmoid(logits).numpy()
    return chance


THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def report(patches: Patches, chance: npt.NDArray[np.float32]) -> dict[str, dict[str, int]]:
    """Print and return, for each threshold, how many patches of each kind it drops."""
    kinds = np.array(patches.kinds)
    names = (("balls", BALL), ("inserts", INSERT), ("others", OTHER))
    print("validation: " + ", ".join(f"{int(np.sum(kinds == k))} {n}" for n, k in names))
    print("threshold  balls dropped  inserts dropped  others dropped")
    table = {}
    for threshold in THRESHOLDS:
        dropped = {n: int(np.sum((kinds == k) & (chance < threshold))) for n, k in names}
        table[str(threshold)] = dropped
        print(f"{threshold:9} {dropped['balls']:14d} {dropped['inserts']:16d} {dropped['others']:15d}")
    return table


def export(net: nn.Sequential, path: Path) -> None:
    dummy = torch.zeros(1, 3, PATCH, PATCH)
    torch.onnx.export(
        net, (dummy,), str(path), input_names=["patches"], output_names=["logits"],
        dynamic_axes={"patches": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False,
    )  # fmt: skip


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--detector", type=Path, default=REPO / "models" / "ball.onnx")
    parser.add_argument("--seeds", type=int, default=60, help="clips of each set to harvest (60)")
    parser.add_argument("--frames", type=int, default=60, help="frames of each clip (60)")
    parser.add_argument("--putter-seeds", type=int, default=200, help="clips of putter frames (200)")
    parser.add_argument("--real-repeat", type=int, default=6, help="patches of each real ball (6)")
    parser.add_argument("--max-balls", type=int, default=8000, help="ball patches trained on (8000)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--ship", action="store_true", help="copy OUT's verifier to models/, no training")
    args = parser.parse_args()
    if args.ship:
        ship(args.out / "verifier.onnx", REPO / "models" / "ball_verifier.onnx")
        return 0
    cv2.setNumThreads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    plan = Harvest(args.detector, TRAIN_SEED, args.seeds, args.frames, args.putter_seeds, args.real_repeat)
    train_set = harvest(plan, args.out, "train")
    checks = Harvest(
        args.detector, VALIDATION_SEED, max(args.seeds // 4, 4), args.frames, args.putter_seeds // 4, 0
    )
    validation = harvest(checks, args.out, "validation")
    train_set = balanced(train_set, args.max_balls, 0)
    kinds = np.array(train_set.kinds)
    logger.info(
        "training on %d balls, %d inserts, %d other",
        *(int(np.sum(kinds == k)) for k in (BALL, INSERT, OTHER)),
    )
    net = train(train_set, args.epochs, 0)
    table = report(validation, chances(net, validation))
    export(net, args.out / "verifier.onnx")
    torch.save(net.state_dict(), args.out / "verifier.pt")
    write_sidecar(args.out / "verifier.onnx", vars(args), table)
    return 0


def ship(model: Path, target: Path) -> None:
    """Copy MODEL and its sidecar to TARGET, each written whole, the sidecar naming the new file."""
    sidecar = json.loads(model.with_suffix(".json").read_text())
    write_atomic(target, model.read_bytes())
    sidecar["model"] = target.name
    write_atomic(target.with_suffix(".json"), (json.dumps(sidecar, indent=2) + "\n").encode())
    print(f"shipped {model} as {target}")


def shown(value: object) -> str:
    """A training parameter as the sidecar keeps it: paths in the checkout relative to it."""
    if isinstance(value, Path) and value.resolve().is_relative_to(REPO):
        return str(value.resolve().relative_to(REPO))
    return str(value)


def write_sidecar(model: Path, training: dict[str, object], validation: dict[str, dict[str, int]]) -> Path:
    """MODEL's sidecar (.json beside it): its hash, its input, the detector it was harvested from, how it
    was trained and what each threshold dropped of the validation patches."""
    detector = Path(str(training["detector"]))
    sidecar = {
        "model": model.name,
        "sha256": file_sha256(model),
        "input": {"patch": PATCH, "context": CONTEXT, "min_side": MIN_SIDE, "layout": "N,3,H,W RGB 0-1"},
        "output": "one logit per patch: ball",
        "detector_sha256": file_sha256(detector),
        "harvest_confidence": HARVEST_CONFIDENCE,
        "seeds": {"train": TRAIN_SEED, "validation": VALIDATION_SEED},
        "training": {k: shown(v) for k, v in training.items()},
        "torch": torch.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "validation_dropped": validation,
    }
    path = model.with_suffix(".json")
    path.write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


if __name__ == "__main__":
    raise SystemExit(main())
