"""Average two checkpoints of one detector layout, weight by weight: a cheap middle between two fine-tunes.

    YOLO_OFFLINE=1 .venv/bin/python -m tools.average_weights FIRST.pt SECOND.pt OUT.pt --share 0.3

OUT takes SHARE of SECOND and the rest of FIRST (batch-norm statistics included); integer buffers come from
SECOND. Both must descend from the same weights (one fine-tuned from the other), or the average is noise.
`train_meta.json` is written beside OUT, naming both inputs by sha256, for `putt-daemon export` to copy into
the sidecar.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path
from typing import Any

from daemon.closed_pipe import run_main
from tools.train_detector import sha256


def average(first: Path, second: Path, out: Path, share: float) -> None:
    import torch  # noqa: PLC0415  # the export extra, imported only here

    a: dict[str, Any] = torch.load(first, map_location="cpu", weights_only=False)
    b: dict[str, Any] = torch.load(second, map_location="cpu", weights_only=False)
    weights_a, weights_b = a["model"].float().state_dict(), b["model"].float().state_dict()
    if weights_a.keys() != weights_b.keys():
        raise SystemExit(f"{first} and {second} are not the same layout")
    mixed = {
        name: value * (1 - share) + weights_b[name] * share if value.is_floating_point() else weights_b[name]
        for name, value in weights_a.items()
    }
    model = copy.deepcopy(b["model"])
    model.load_state_dict(mixed)
    torch.save(b | {"model": model.half(), "ema": None, "optimizer": None}, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--share", type=float, default=0.5, help="share of SECOND in the average (0 to 1)")
    args = parser.parse_args()
    if not 0.0 <= args.share <= 1.0:
        parser.error(f"--share must be between 0 and 1, not {args.share}")
    os.environ["YOLO_OFFLINE"] = "1"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    average(args.first, args.second, args.out, args.share)
    meta = {
        "training": {
            "average_of": {sha256(args.first): 1 - args.share, sha256(args.second): args.share},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    (args.out.parent / "train_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out} sha256 {sha256(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
