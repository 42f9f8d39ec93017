"""Labelled footage from a box, held out from training, as rows of `bench.detector_accuracy`.

A footage folder is what `tools/draft_labels.py` writes, with its labels corrected by a person: `images/`,
`labels/` (YOLO, one file a picture, empty when it shows no ball) and, when the footage was drafted with the
box's calibration, `calibration.json`. With it the detector looks only at the rig, as the daemon does, and a
ball outside the rig or in the ignore area neither counts against recall nor, found, as a false alarm.

A folder a model was trained on (`--real-extra`, recorded in its sidecar) is no measure of it: refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from bench.detection_score import DEFAULT_CONFIDENCE, Score, detector_config, label_box, watched
from daemon.commands.arguments import read_image
from daemon.errors import CalibrationError
from daemon.models import Frame
from daemon.vision.calibration import Calibration, load_calibration
from daemon.vision.detector import BallDetector
from tools.real_paste import read_labels
from tools.train_detector import extra_real_images

CALIBRATION = "calibration.json"


def _trained_folders(training: object) -> Iterator[str]:
    """Every --real-extra folder in a sidecar's training block, the earlier stages' nested in it included."""
    if isinstance(training, dict):
        for key, value in training.items():
            if key == "real_extra" and isinstance(value, list):
                yield from (str(v) for v in value)
            else:
                yield from _trained_folders(value)


def trained_on(model: Path, folder: Path) -> bool:
    """Whether MODEL's sidecar says it was trained on FOLDER."""
    sidecar = model.with_suffix(".json")
    if not sidecar.is_file():
        return False
    training = json.loads(sidecar.read_text()).get("training", {})
    return any(Path(f).resolve() == folder.resolve() for f in _trained_folders(training))


def check_footage(folder: Path, models: list[Path]) -> str | None:
    """Why FOLDER cannot be a held-out row for MODELS, or None when it can."""
    if not folder.is_dir():
        return f"{folder}: no such folder"
    try:
        extra_real_images(folder)
        if (folder / CALIBRATION).is_file():
            load_calibration(folder / CALIBRATION)
    except ValueError as error:
        return str(error)
    except CalibrationError as error:
        return f"{folder / CALIBRATION}: {error}"
    trained = [str(m) for m in models if trained_on(m, folder)]
    if trained:
        return f"{folder}: {trained[0]} was trained on it, so it is not held out"
    return None


def row_name(folder: Path) -> str:
    """The folder's row in the table (38 characters at most, as the table's first column)."""
    return f"footage {folder.resolve().name}"[:38]


def footage_score(model: Path, folder: Path) -> tuple[Score, int]:
    """MODEL's score on the labelled pictures of FOLDER, and how many pictures there are."""
    path = folder / CALIBRATION
    calibration = load_calibration(path) if path.is_file() else None
    detectors: dict[tuple[int, int], tuple[BallDetector, Calibration | None]] = {}
    score = Score()
    pictures = extra_real_images(folder)
    try:
        for picture in pictures:
            image = read_image(picture)
            height, width = image.shape[:2]
            if (width, height) not in detectors:
                rig = calibration.scaled(width, height) if calibration is not None else None
                config = detector_config(
                    model, confidence=DEFAULT_CONFIDENCE, crop=rig.bounds() if rig is not None else None
                )
                detectors[(width, height)] = (BallDetector.open(config, (width, height)), rig)
            detector, rig = detectors[(width, height)]
            truth = [
                label_box(b) for b in read_labels(folder / "labels" / f"{picture.stem}.txt", width, height)
            ]
            found = [d.box for d in detector.detect(Frame(0, 0.0, image)).items]
            if rig is None:
                score.add(truth, [], found)
            else:
                counted = [b for b in truth if watched(rig, b)]
                ignored = [b for b in truth if not watched(rig, b)]
                score.add(counted, ignored, found, [b for b in found if not watched(rig, b)])
    finally:
        for detector, _ in detectors.values():
            detector.close()
    return score, len(pictures)
