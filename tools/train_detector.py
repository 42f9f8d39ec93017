"""Train the shipped ball detector: simulator images plus the real mini-golf images, then export to ONNX.

Reproducible: every parameter is printed and stored in `train_meta.json` beside the weights, which the export
step copies into the model's sidecar. Resumable: run again with `--resume` after an interruption.

    YOLO_OFFLINE=1 .venv/bin/python -m tools.train_detector --out runs/ball
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import yaml

from daemon.closed_pipe import run_main
from daemon.commands.simulate_args import add_look_option
from daemon.sim.dataset import class_names
from tools.draft_labels import PICTURES
from tools.real_paste import write_pasted
from tools.shared_data import shared_folder

REPO = Path(__file__).resolve().parents[1]
REAL = shared_folder() / "data" / "real-balls-mini-golf" / "train"
# Seeds of simulator scenes used here; benchmarks draw theirs from 7000 and up, never these.
TRAIN_SEED = 1000
VAL_SEED = 2000
CLIP_TRAIN_SEED = 20  # clip seeds 20000-20999
CLIP_VAL_SEED = 21  # clip seeds 21000-21999
HELD_OUT_CLIP_SEEDS = range(7000, 10_000)  # the benchmarks' and tests' clips: never trained on
CLIP_CROP_SHARE = 0.85
# The balls missed most are small and struck: 9 to 14 px wide, crossing 250 to 430 px a second.
FAST_CLIP_SPEED = 200.0
DEFAULT_IMGSZ = 320  # a model trained from scratch


@dataclass(frozen=True)
class TrainParams:
    """Everything that decides the trained weights."""

    architecture: str
    depth: float
    width: float
    imgsz: int
    epochs: int
    batch: int
    seed: int
    sim_images: int
    sim_val_images: int
    sim_train_seed: int
    sim_val_seed: int
    real_repeat: int
    real_holdout_every: int
    mosaic: float
    crop_share: float  # share of simulator images cut to the rig, as the detector sees frames
    lr0: float
    clip_images: int  # frames of scripted clips, as the daemon's camera sees them
    clip_val_images: int
    clip_train_seed: int
    clip_val_seed: int
    init_weights: str  # sha256 of the weights training started from ("" = from scratch)
    oblique_share: float = 0.0  # share of simulator images and clips seen by a camera at an angle
    realism_share: float = 0.0  # share of simulator scenes given each harder look (daemon.sim.realism)
    pale_share: float = 0.0  # share of balls in light-surround simulator images laid on its pale ground
    real_paste: int = 0  # copies of each real training image with real balls pasted on its white table
    real_extra: tuple[str, ...] = ()  # folders of more real labelled frames (tools.draft_labels), trained on
    real_extra_images: int = 0
    plain_clip_images: int = 0  # more clip frames with no harder look: plain rolling balls among the looks
    plain_clip_seed: int = 0
    look_shares: tuple[tuple[str, float], ...] = ()  # harder looks given their own share, over realism_share
    fast_clip_images: int = 0  # more plain clip frames, each with a ball moving at least fast_clip_speed
    fast_clip_seed: int = 0
    fast_clip_speed: float = 0.0  # image pixels a second
    fast_look_clip_images: int = 0  # clip frames with the harder looks' mix, each with a ball that fast
    fast_look_clip_seed: int = 0
    putter_clip_images: int = 0  # clip frames with the putter head in view, its look-alike insert on
    putter_clip_seed: int = 0
    # Stages up to 22 ran Ultralytics' "auto", which trains this short a run with AdamW at 0.002 and
    # ignores lr0; their sidecars say so by having no optimizer here.
    optimizer: str = "AdamW"
    warmup_epochs: float = 3.0
    lookalike_class: bool = False  # the putter's look-alike inserts labelled as class 1 of their own

    @property
    def names(self) -> dict[int, str]:
        return class_names(lookalike_class=self.lookalike_class)


def real_split(every: int) -> tuple[list[Path], list[Path]]:
    """Real images for training and the held-out ones (every Nth by name), never trained on."""
    images = sorted((REAL / "images").glob("*.jpg"))
    held = [p for i, p in enumerate(images) if i % every == every - 1]
    return [p for p in images if p not in held], held


def extra_real_images(folder: Path) -> list[Path]:
    """The pictures of a folder of real labelled frames (images/ and labels/, as tools.draft_labels writes).

    Every picture needs its label file, empty when it shows no ball: a missing one would teach the model
    that the balls in the picture are background.
    """
    images = sorted(p for p in (folder / "images").glob("*.*") if p.suffix.lower() in PICTURES)
    if not images:
        raise ValueError(f"{folder}: no pictures in {folder / 'images'}")
    unlabelled = [p.name for p in images if not (folder / "labels" / f"{p.stem}.txt").is_file()]
    if unlabelled:
        raise ValueError(
            f"{folder}: {len(unlabelled)} of {len(images)} pictures have no label file in "
            f"{folder / 'labels'} (first {unlabelled[0]})"
        )
    return images


def link_real(images: list[Path], labels: Path, data: Path, repeat: int, prefix: str) -> None:
    """Put each of IMAGES REPEAT times into the training split, with its label from LABELS."""
    for i in range(repeat):
        for image in images:
            target = data / "images" / "train" / f"{prefix}{i}_{image.name}"
            if not target.exists():
                target.symlink_to(image.resolve())
                label = labels / f"{image.stem}.txt"
                (data / "labels" / "train" / f"{prefix}{i}_{image.stem}.txt").write_text(label.read_text())


def simulate(
    folder: Path,
    images: int,
    seed: int,
    params: TrainParams,
    *,
    from_clips: bool = False,
    realism_share: float | None = None,
    min_speed: float = 0.0,
    putter_frames: bool = False,
) -> None:
    if (folder / "data.yaml").is_file():
        print(f"reusing {folder}")
        return
    command = [sys.executable, "-m", "daemon", "simulate", "--dataset", str(folder), "--images", str(images)]
    crop_share = CLIP_CROP_SHARE if from_clips else params.crop_share
    command += [
        "--seed",
        str(seed),
        "--crop-share",
        str(crop_share),
        "--oblique-share",
        str(params.oblique_share),
    ]
    if realism_share is None:
        command += ["--realism", str(params.realism_share)]
        command += [a for name, look in params.look_shares for a in ("--look", f"{name}={look}")]
    else:
        command += ["--realism", str(realism_share)]
    if putter_frames:
        command += ["--look", "lookalike=1", "--putter-frames"]
    if params.lookalike_class:
        command.append("--lookalike-class")
    if from_clips:
        command.append("--from-clips")
        if min_speed:
            command += ["--min-speed", str(min_speed)]
    elif params.pale_share:
        command += ["--pale-share", str(params.pale_share)]
    subprocess.run(command, check=True)


def link_split(src: Path, dst: Path, split: str, prefix: str) -> int:
    """Link a YOLO dataset's images and labels into dst/{images,labels}/split with a name prefix."""
    count = 0
    for image in sorted((src / "images").rglob("*.*")):
        label = src / "labels" / image.relative_to(src / "images").with_suffix(".txt")
        target = dst / "images" / split / f"{prefix}{image.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        (dst / "labels" / split).mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(image.resolve())
            text = label.read_text() if label.exists() else ""
            (dst / "labels" / split / f"{prefix}{image.stem}.txt").write_text(text)
        count += 1
    return count


@dataclass(frozen=True)
class ExtraClips:
    """A training-only set of clip frames, linked into the dataset under its own file-name prefix."""

    folder: str
    prefix: str
    images: int
    seed: int
    look_share: float | None  # share of frames given each harder look; None keeps the scenes' mix
    min_speed: float = 0.0
    putter_frames: bool = False  # only frames with the putter head in view, each with the look-alike insert


def extra_clip_sets(params: TrainParams) -> list[ExtraClips]:
    sets = [
        # With each look in a share of the scenes, hardly any scene has none: plain clips keep the plain
        # rig's balls in view, fast ones its struck balls.
        ExtraClips("clip-plain", "plain_", params.plain_clip_images, params.plain_clip_seed, 0.0),
        ExtraClips(
            "clip-fast", "fast_", params.fast_clip_images, params.fast_clip_seed, 0.0, params.fast_clip_speed
        ),
        # Struck balls on the dark return channel, among putter inserts and sensor noise: the rolling balls
        # the harder looks lose most.
        ExtraClips(
            "clip-fast-look",
            "fastlook_",
            params.fast_look_clip_images,
            params.fast_look_clip_seed,
            None,
            params.fast_clip_speed,
        ),
        # The putter at address beside a resting ball, every time with the insert: the frames where the
        # insert passes for a ball, and of which a clip's still-frame share keeps few.
        ExtraClips(
            "clip-putter",
            "putter_",
            params.putter_clip_images,
            params.putter_clip_seed,
            None,
            putter_frames=True,
        ),
    ]
    return [extra for extra in sets if extra.images]


def build_dataset(work: Path, params: TrainParams) -> Path:
    sim_train, sim_val = work / "sim-train", work / "sim-val"
    simulate(sim_train, params.sim_images, params.sim_train_seed, params)
    simulate(sim_val, params.sim_val_images, params.sim_val_seed, params)
    data = work / "data"
    link_split(sim_train, data, "train", "sim_")
    link_split(sim_val, data, "val", "sim_")
    if params.clip_images:
        clip_train, clip_val = work / "clip-train", work / "clip-val"
        for folder, images, seed in (
            (clip_train, params.clip_images, params.clip_train_seed),
            (clip_val, params.clip_val_images, params.clip_val_seed),
        ):
            simulate(folder, images, seed, params, from_clips=True)
        link_split(clip_train, data, "train", "")
        link_split(clip_val, data, "val", "")
    for extra in extra_clip_sets(params):
        simulate(
            work / extra.folder,
            extra.images,
            extra.seed,
            params,
            from_clips=True,
            realism_share=extra.look_share,
            min_speed=extra.min_speed,
            putter_frames=extra.putter_frames,
        )
        link_split(work / extra.folder, data, "train", extra.prefix)
    train_real, held = real_split(params.real_holdout_every)
    link_real(train_real, REAL / "labels", data, params.real_repeat, "real")
    for k, folder in enumerate(Path(f) for f in params.real_extra):
        link_real(extra_real_images(folder), folder / "labels", data, params.real_repeat, f"extra{k}r")
    if params.real_paste:
        write_pasted(train_real, REAL / "labels", data, params.real_paste, params.seed)
    (work / "real_holdout.txt").write_text("".join(f"{p.name}\n" for p in held))
    config = {"path": str(data), "train": "images/train", "val": "images/val", "names": params.names}
    (data / "data.yaml").write_text(yaml.safe_dump(config))
    return data / "data.yaml"


def model_yaml(work: Path, params: TrainParams) -> Path:
    import ultralytics  # noqa: PLC0415  # the export extra, imported only when training

    base = Path(ultralytics.__file__).parent / "cfg" / "models" / "26" / "yolo26.yaml"
    config = yaml.safe_load(base.read_text())
    config["nc"] = len(params.names)
    config["scales"] = {"n": [params.depth, params.width, 1024]}
    path = work / f"{params.architecture}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def use_every_core(_trainer: object) -> None:
    """Ultralytics trains on the CPU with a thread fewer than the cores, keeping one for its data loader's
    workers, yet runs no workers on the CPU: the loader shares the main thread and a core stays idle."""
    import torch  # noqa: PLC0415  # the export extra, imported only when training

    torch.set_num_threads(os.cpu_count() or 1)
    print(f"training on {torch.get_num_threads()} threads")


def add_lookalike_class(net: Any) -> None:
    """Widen a ball-only detection network to ball and lookalike, in place, the lookalike's scores starting
    as a copy of the ball's: every weight that finds balls is kept, and the new class starts where the
    mistakes are instead of from nothing."""
    import torch  # noqa: PLC0415  # the export extra, imported only when training

    head = net.model[-1]
    for branches in (getattr(head, "cv3", None), getattr(head, "one2one_cv3", None)):
        for branch in branches or ():
            ball = branch[-1]
            scores = torch.nn.Conv2d(ball.in_channels, 2, 1).to(ball.weight.dtype)
            with torch.no_grad():
                scores.weight.copy_(ball.weight.repeat(2, 1, 1, 1))
                scores.bias.copy_(ball.bias.repeat(2))
            branch[-1] = scores
    head.nc, head.no = 2, 2 + head.reg_max * 4
    net.names = class_names(lookalike_class=True)
    net.yaml["nc"] = 2


def train(args: argparse.Namespace, params: TrainParams) -> Path:
    from ultralytics import YOLO  # noqa: PLC0415  # the export extra, imported only when training

    # Ultralytics files a relative project under its own runs/ folder; an absolute one is used as given.
    work: Path = args.out.resolve()
    run = work / "run"
    last = run / "weights" / "last.pt"
    if args.resume and last.is_file():
        print(f"resuming from {last}")
        resumed = YOLO(str(last))
        resumed.add_callback("on_train_start", use_every_core)
        resumed.train(resume=True)
    else:
        data = build_dataset(work, params)
        model = YOLO(str(args.init) if args.init else str(model_yaml(work, params)))
        if args.init and len(model.names) < len(params.names):
            add_lookalike_class(model.model)
        model.add_callback("on_train_start", use_every_core)
        model.train(
            data=str(data),
            epochs=params.epochs,
            imgsz=params.imgsz,
            batch=params.batch,
            seed=params.seed,
            deterministic=True,
            device="cpu",
            workers=2,
            project=str(work),
            name="run",
            exist_ok=True,
            pretrained=bool(args.init),
            amp=False,
            plots=False,
            mosaic=params.mosaic,
            # Named, since "auto" would pick AdamW at 0.002 for runs this short and ignore lr0; the
            # momentum and bias warm-up are the ones "auto" gives AdamW.
            optimizer=params.optimizer,
            lr0=params.lr0,
            momentum=0.9,
            warmup_bias_lr=0.0,
            warmup_epochs=params.warmup_epochs,
            close_mosaic=max(1, params.epochs // 5),
            patience=max(10, params.epochs // 3),
            cache=True,
            verbose=False,
        )
    best = run / "weights" / "best.pt"
    held = (work / "real_holdout.txt").read_text().split()
    meta = {
        "training": asdict(params)
        | {"real_holdout": held, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    }
    (best.parent / "train_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return best


def trains_on_held_out_clips(seed: int, images: int) -> bool:
    # Seeds N*1000 on, at most one clip per image: the range is never shorter than what is used.
    first, last = seed * 1000, seed * 1000 + max(images, 1)
    held = HELD_OUT_CLIP_SEEDS
    return seed == CLIP_VAL_SEED or (first < held.stop and held.start < last)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> NoReturn:
    # By default SIGTERM ends this process at once and leaves its `simulate` child writing into the work
    # folder; as an exception it unwinds through subprocess.run, which kills the child.
    raise SystemExit(128 + signum)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "ball", help="work folder")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--imgsz",
        type=int,
        help=f"input size (default: the size --init was trained at, else {DEFAULT_IMGSZ})",
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sim-images", type=int, default=1200)
    parser.add_argument("--sim-val-images", type=int, default=200)
    parser.add_argument("--clip-images", type=int, default=0, help="training frames of scripted clips")
    parser.add_argument("--clip-val-images", type=int, default=200)
    parser.add_argument("--width", type=float, default=0.125, help="width multiple of the YOLO26 layout")
    parser.add_argument("--depth", type=float, default=0.33, help="depth multiple of the YOLO26 layout")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument(
        "--init", type=Path, default=None, help="fine-tune these weights instead of a new model"
    )
    parser.add_argument(
        "--crop-share", type=float, default=0.0, help="share of simulator images cut to the rig"
    )
    parser.add_argument(
        "--train-seed", type=int, default=TRAIN_SEED, help="dataset seed of the training images"
    )
    parser.add_argument("--lr0", type=float, default=0.002, help="initial learning rate of AdamW")
    parser.add_argument(
        "--warmup-epochs", type=float, default=3.0, help="epochs over which the learning rate rises to lr0"
    )
    parser.add_argument(
        "--oblique-share",
        type=float,
        default=0.0,
        help="share of simulator images and clips seen by a camera at an angle rather than from above",
    )
    parser.add_argument(
        "--realism-share",
        type=float,
        default=0.0,
        help="share of simulator scenes given each harder look (return channel, sensor, exposure, ...)",
    )
    parser.add_argument(
        "--pale-share",
        type=float,
        default=0.0,
        help="share of the balls of light-surround simulator images laid on its pale floor or catch tray",
    )
    parser.add_argument(
        "--real-repeat",
        type=int,
        default=3,
        help="times each real training image is in an epoch (the held-out ones never are)",
    )
    parser.add_argument(
        "--real-paste",
        type=int,
        default=0,
        help="copies of each real training image with real balls pasted on its white table",
    )
    parser.add_argument(
        "--real-extra",
        type=Path,
        action="append",
        default=[],
        help="a folder of more real labelled frames (images/, labels/: tools.draft_labels), each in an epoch "
        "as often as --real-repeat says; may be given more than once",
    )
    parser.add_argument(
        "--clip-train-seed",
        type=int,
        default=CLIP_TRAIN_SEED,
        help=f"dataset seed of the training clips (clip seeds N*1000 on; default {CLIP_TRAIN_SEED})",
    )
    parser.add_argument(
        "--plain-clip-images",
        type=int,
        default=0,
        help="more training frames of scripted clips with no harder look (plain fast balls)",
    )
    parser.add_argument(
        "--plain-clip-seed",
        type=int,
        default=None,
        help="dataset seed of the plain clips (clip seeds N*1000 on); needed with --plain-clip-images",
    )
    parser.add_argument(
        "--fast-clip-images",
        type=int,
        default=0,
        help=f"more training frames of scripted clips with no harder look, each with a ball moving at least "
        f"{FAST_CLIP_SPEED:g} image pixels a second (small struck balls)",
    )
    parser.add_argument(
        "--fast-clip-seed",
        type=int,
        default=None,
        help="dataset seed of the fast clips (clip seeds N*1000 on); needed with --fast-clip-images",
    )
    parser.add_argument(
        "--fast-look-clip-images",
        type=int,
        default=0,
        help="more training frames of scripted clips with the harder looks of --realism-share and --look, "
        "each with a ball as fast as --fast-clip-images asks",
    )
    parser.add_argument(
        "--fast-look-clip-seed",
        type=int,
        default=None,
        help="dataset seed of those clips (clip seeds N*1000 on); needed with --fast-look-clip-images",
    )
    parser.add_argument(
        "--putter-clip-images",
        type=int,
        default=0,
        help="more training frames of scripted clips with the harder looks of --realism-share and --look, "
        "each with the putter head in view and its look-alike insert on (at address beside the ball)",
    )
    parser.add_argument(
        "--putter-clip-seed",
        type=int,
        default=None,
        help="dataset seed of those clips (clip seeds N*1000 on); needed with --putter-clip-images",
    )
    parser.add_argument(
        "--lookalike-class",
        action="store_true",
        help="label the putter's look-alike inserts as a class of their own (lookalike) beside the ball: the "
        "model learns what the thing most like a ball is, and the daemon reads only the ball class",
    )
    add_look_option(parser, "--realism-share")
    parser.add_argument("--ship", type=Path, default=None, help="copy best.pt here and export next to it")
    return parser


def check_clip_seeds(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Each set of clips asked for has its own seed, clear of the validation, bench and test clips."""
    clip_seeds = [("--clip-train-seed", args.clip_train_seed, args.clip_images)]
    for kind, images, seed in (
        ("plain", args.plain_clip_images, args.plain_clip_seed),
        ("fast", args.fast_clip_images, args.fast_clip_seed),
        ("fast-look", args.fast_look_clip_images, args.fast_look_clip_seed),
        ("putter", args.putter_clip_images, args.putter_clip_seed),
    ):
        if not images:
            continue
        if seed is None:
            parser.error(f"--{kind}-clip-images needs --{kind}-clip-seed")
        for flag, other, _ in clip_seeds:
            if seed == other:
                parser.error(f"--{kind}-clip-seed must differ from {flag}: the clips would repeat")
        clip_seeds.append((f"--{kind}-clip-seed", seed, images))
    for flag, seed, images in clip_seeds:
        if trains_on_held_out_clips(seed, images):
            parser.error(f"{flag} {seed} would train on validation, bench or test clips")


def checkpoint_info(weights: Path) -> tuple[int, dict[int, str]]:
    """The input size an Ultralytics checkpoint was trained at, and its class names."""
    import torch  # noqa: PLC0415  # the export extra, loaded only to train

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    names = getattr(checkpoint["model"], "names", class_names(lookalike_class=False))
    return int(checkpoint["train_args"]["imgsz"]), {int(k): str(v) for k, v in dict(names).items()}


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = build_parser()
    args = parser.parse_args()
    check_clip_seeds(parser, args)
    # Scene seeds are SEED*100000 + k, so two dataset seeds share images only when they are equal.
    if args.train_seed == VAL_SEED:
        parser.error(f"--train-seed {VAL_SEED} is the validation images' seed")
    for flag, value in (
        ("--real-repeat", args.real_repeat),
        ("--real-paste", args.real_paste),
        ("--warmup-epochs", args.warmup_epochs),
    ):
        if value < 0:
            parser.error(f"{flag} must be 0 or more, not {value}")
    if not args.lr0 > 0:
        parser.error(f"--lr0 must be above 0, not {args.lr0}")
    extra_images = 0
    for folder in args.real_extra:
        try:
            extra_images += len(extra_real_images(folder))
        except ValueError as error:
            parser.error(f"--real-extra {error}")
    os.environ["YOLO_OFFLINE"] = "1"
    init_imgsz = DEFAULT_IMGSZ
    if args.init is not None:
        if not args.init.is_file():
            parser.error(f"--init {args.init}: no such file")
        try:
            init_imgsz, init_names = checkpoint_info(args.init)
        except (OSError, KeyError, RuntimeError, pickle.UnpicklingError) as error:
            parser.error(f"--init {args.init}: not an Ultralytics checkpoint ({error})")
        if init_names == class_names(lookalike_class=True) and not args.lookalike_class:
            # Trained on without its labels, the lookalike class would be taught that no insert is one.
            parser.error(f"--init {args.init} has the lookalike class: train it on with --lookalike-class")
    if args.imgsz is None:
        args.imgsz = init_imgsz  # fine-tuning at another size than the weights learned costs accuracy
    params = TrainParams(
        architecture=f"yolo26-d{args.depth}-w{args.width}",
        depth=args.depth,
        width=args.width,
        imgsz=args.imgsz,
        epochs=args.epochs,
        batch=args.batch,
        seed=args.seed,
        sim_images=args.sim_images,
        sim_val_images=args.sim_val_images,
        sim_train_seed=args.train_seed,
        sim_val_seed=VAL_SEED,
        real_repeat=args.real_repeat,
        real_holdout_every=5,
        mosaic=0.5,
        crop_share=args.crop_share,
        init_weights=sha256(args.init) if args.init else "",
        lr0=args.lr0,
        clip_images=args.clip_images,
        clip_val_images=args.clip_val_images if args.clip_images else 0,
        clip_train_seed=args.clip_train_seed,
        clip_val_seed=CLIP_VAL_SEED,
        oblique_share=args.oblique_share,
        realism_share=args.realism_share,
        pale_share=args.pale_share,
        real_paste=args.real_paste,
        real_extra=tuple(str(f.resolve()) for f in args.real_extra),
        real_extra_images=extra_images,
        plain_clip_images=args.plain_clip_images,
        plain_clip_seed=args.plain_clip_seed if args.plain_clip_images else 0,
        look_shares=tuple(dict(args.look).items()),
        fast_clip_images=args.fast_clip_images,
        fast_clip_seed=args.fast_clip_seed if args.fast_clip_images else 0,
        fast_clip_speed=FAST_CLIP_SPEED if args.fast_clip_images or args.fast_look_clip_images else 0.0,
        fast_look_clip_images=args.fast_look_clip_images,
        fast_look_clip_seed=args.fast_look_clip_seed if args.fast_look_clip_images else 0,
        putter_clip_images=args.putter_clip_images,
        putter_clip_seed=args.putter_clip_seed if args.putter_clip_images else 0,
        warmup_epochs=args.warmup_epochs,
        lookalike_class=args.lookalike_class,
    )
    print("training parameters:", json.dumps(asdict(params)))
    args.out.mkdir(parents=True, exist_ok=True)
    best = train(args, params)
    print(f"best weights: {best} sha256 {sha256(best)}")
    if args.ship:
        args.ship.mkdir(parents=True, exist_ok=True)
        shipped = args.ship / "ball.pt"
        shutil.copy2(best, shipped)
        shutil.copy2(best.parent / "train_meta.json", args.ship / "train_meta.json")
        # The one-to-many head: after short trainings it is the more accurate of the two (models/README.md).
        export = [
            sys.executable,
            "-m",
            "daemon",
            "export",
            str(shipped),
            "--imgsz",
            str(args.imgsz),
            "--layout",
            "raw",
        ]
        subprocess.run([*export, "--out", str(args.ship)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
