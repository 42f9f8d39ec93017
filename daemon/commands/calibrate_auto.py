"""`putt-daemon calibrate --auto IMG --out FILE`: propose a calibration from one still of the rig.

The proposal is a starting point to check and correct, not a measurement: the command prints how it was
found and writes the calibration (atomically) with the scene reference beside it, so the service can tell
later whether the camera moved since.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from daemon.commands.arguments import read_image
from daemon.errors import InputDataError
from daemon.vision.drift import write_reference
from daemon.vision.proposal import propose


def auto_calibrate(image_path: Path, out: Path | None) -> int:
    """Propose the regions from IMAGE_PATH and write them to OUT with its scene reference."""
    if out is None:
        print("putt-daemon calibrate: --auto needs --out FILE, where to write the proposal", file=sys.stderr)
        return 2
    image = read_image(image_path)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    proposal = propose(image, calibrated_at=stamp)
    if proposal is None:
        raise InputDataError(f"{image_path}: no cup found; calibrate by hand")
    pose, cup = proposal.pose, proposal.cup
    print(f"cup at {cup.x:.1f},{cup.y:.1f}, radius {cup.radius:.1f} px; rig turned {pose.angle % 360:.1f}"
          f" deg, {pose.scale:.3f} px per rig unit; edge score {proposal.score:.1f}")  # fmt: skip
    proposal.calibration.save(out)
    reference = write_reference(image, proposal.calibration, out)
    print(f"proposed calibration written to {out} (scene reference {reference.name}); check it before use")
    return 0
