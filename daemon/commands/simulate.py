"""`putt-daemon simulate`: a clip with its truth and calibration, or a detector training dataset.

The output folder is checked before the first frame is rendered, and a written clip ends with the exact
`putt-daemon process` command for it, its own calibration included: a simulated rig is not the default one.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from collections import Counter
from dataclasses import replace

from daemon.commands.arguments import check_output_folder
from daemon.commands.simulate_args import add_simulate_arguments
from daemon.sim.clip import ClipSpec, write_clip
from daemon.sim.dataset import SpeedNotReachedError, write_dataset
from daemon.sim.perspective import CameraChoice
from daemon.sim.realism import Realism

# What only one of the two targets reads; given to the other, it would be ignored without a word.
DATASET_ONLY = ("images", "crop_share", "pale_share", "from_clips", "min_speed", "putter_frames",
                "lookalike_class", "oblique_share")  # fmt: skip
CLIP_ONLY = ("sessions", "putts", "width", "height", "fps", "default_rig", "camera", "tilt")


def ignored_options(args: argparse.Namespace) -> list[str]:
    """The options given other than their defaults that the chosen target does not read, as flags."""
    unused = CLIP_ONLY if args.dataset is not None else DATASET_ONLY
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    given = [name for name in unused if getattr(args, name) != parser.get_default(name)]
    return ["--" + name.replace("_", "-") for name in given]


def simulate_command(args: argparse.Namespace) -> int:
    """Entry point of `putt-daemon simulate`."""
    started = time.monotonic()
    ignored = ignored_options(args)
    if ignored:
        target = "--dataset" if args.dataset is not None else "--out"
        print(f"putt-daemon simulate: {', '.join(ignored)}: not used with {target}", file=sys.stderr)
        return 2
    realism = replace(Realism.every(args.realism), **dict(args.look))
    if args.dataset is not None:
        for flag, asked in (("--min-speed", args.min_speed), ("--putter-frames", args.putter_frames)):
            if asked and not args.from_clips:
                # A random scene is one still picture: no next frame to measure a speed by, no golfer.
                print(f"putt-daemon simulate: {flag} needs --from-clips", file=sys.stderr)
                return 2
        fresh = not args.dataset.exists()
        check_output_folder(args.dataset)
        try:
            written = write_dataset(
                args.dataset,
                args.images,
                args.seed,
                crop_share=args.crop_share,
                oblique_share=args.oblique_share,
                realism=realism,
                pale_share=args.pale_share,
                from_clips=args.from_clips,
                min_speed=args.min_speed,
                putter_frames=args.putter_frames,
                lookalike_class=args.lookalike_class,
            )
        except SpeedNotReachedError as error:
            if fresh:  # its frames are no dataset without the rest: leave no folder behind
                shutil.rmtree(args.dataset, ignore_errors=True)
            flag = "--putter-frames" if args.putter_frames else "--min-speed"
            print(f"putt-daemon simulate: {flag}: {error}", file=sys.stderr)
            return 2
        balls = sum(len(d.balls) for d in written)
        print(f"{len(written)} images, {balls} balls -> {args.dataset} ({time.monotonic() - started:.1f} s)")
        return 0
    check_output_folder(args.out)
    spec = ClipSpec(args.seed, args.sessions, args.putts, args.width, args.height, args.fps,
                    default_rig=args.default_rig, camera=CameraChoice(args.camera, args.tilt),
                    realism=realism)  # fmt: skip
    truth = write_clip(spec, args.out)
    kinds = Counter(p["kind"] for p in truth["putts"])
    print(
        f"{truth['frames']} frames ({truth['frames'] / args.fps:.0f} s), {len(truth['sessions'])} sessions, "
        f"{len(truth['putts'])} putts ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
        f"{truth['camera']} camera "
        f"-> {args.out} "
        f"({time.monotonic() - started:.1f} s)"
    )
    command = ["putt-daemon", "process", str(args.out / "clip.mp4"),
               "--calibration", str(args.out / "calibration.json")]  # fmt: skip
    print(f"to process it: {shlex.join(command)}")
    return 0
