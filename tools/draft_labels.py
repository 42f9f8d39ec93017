"""Real footage to detector training data: frames, with the shipped model's boxes as draft labels.

    .venv/bin/python -m tools.draft_labels putts.mp4 [more.mp4 | a folder of pictures ...] --out footage/
    (correct footage/labels/*.txt in a YOLO label editor, footage/review.csv first)
    YOLO_OFFLINE=1 .venv/bin/python -m tools.train_detector --real-extra footage/ ...

Every --every'th frame of each video (every picture of a folder) in which the model sees a ball at --doubt or
more is kept: `images/<video>_<frame number>.jpg` (or `<folder>_<picture>.jpg`), and `labels/<same>.txt`
in the YOLO format (class 0, centre and size over the picture's size) with the boxes of --confidence or more.
`review.csv` has a row per kept frame: how many boxes were labelled and how many were left out as doubtful
(between the two confidences). Doubtful frames are where the model is weakest: each one, once its labels are
corrected, teaches it the most. Frames with no ball are skipped unless --empty keeps them, as background the
model must learn to leave alone.

With --calibration (the box's calibration file) the model looks only at the rig, as the daemon does, and a
copy goes into the folder as calibration.json; the labels are in the whole frame's pixels either way. Each
file is written atomically, so a run that is stopped leaves no torn picture or label, and a second run over
the same footage rewrites the same names. Footage kept apart from training and labelled is a row of
`bench.detector_accuracy --footage`.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from daemon.atomicfile import write_atomic, write_text_atomic
from daemon.closed_pipe import run_main
from daemon.commands.arguments import read_image
from daemon.errors import CalibrationError, InputDataError, ModelError, PuttDaemonError
from daemon.models import Detection, Frame, Image
from daemon.settings import ModelSettings
from daemon.vision.calibration import load_calibration
from daemon.vision.camera import VideoFileSource
from daemon.vision.detector import BallDetector, DetectorConfig
from tools.real_paste import LabelBox

REPO = Path(__file__).resolve().parents[1]
PICTURES = (".jpg", ".jpeg", ".png", ".bmp")
LABEL_CONFIDENCE = ModelSettings().confidence  # a box the daemon would act on is a label
DOUBT = 0.15  # lower than this, a box is noise rather than a ball the model half sees
EVERY = 15  # half a second of a 30 fps camera: a ball moves on, a resting one is not kept thirty times
REVIEW_COLUMNS = ("image", "source", "frame", "labelled", "doubtful", "lowest_labelled", "highest_doubtful")


@dataclass(frozen=True, slots=True)
class DraftSettings:
    """What decides which frames are kept and which boxes become labels."""

    model: Path
    confidence: float = LABEL_CONFIDENCE  # a box at this or more is a label
    doubt: float = DOUBT  # a box between this and CONFIDENCE is left out, and its frame marked for review
    every: int = EVERY  # one frame in so many of a video
    empty: bool = False  # keep frames with no box at DOUBT or more
    calibration: Path | None = None


@dataclass(frozen=True, slots=True)
class DraftFrame:
    """One kept frame: its name, the video or picture it came from, and the boxes split by confidence."""

    name: str
    source: Path
    index: int
    labelled: tuple[Detection, ...]
    doubtful: tuple[Detection, ...]


def source_name(source: Path) -> str:
    """What the frames of SOURCE are named after: a folder's name, a video's name without its suffix."""
    return source.name if source.is_dir() else source.stem


def frames_of(source: Path, every: int) -> Iterator[tuple[str, Path, int, Image]]:
    """(name, file, frame index, picture) of every EVERY'th frame of a video, or of each picture of a folder
    by name. The name is the video's and the frame's number, or the folder's and the picture's name."""
    if source.is_dir():
        pictures = sorted(p for p in source.iterdir() if p.suffix.lower() in PICTURES)
        for index, path in enumerate(pictures):
            yield f"{source_name(source)}_{path.stem}", path, index, read_image(path)
        return
    # The daemon's own reader: a damaged stretch is read past, and frames keep their numbers in the file.
    video = VideoFileSource(source)
    try:
        while (frame := video.read()) is not None:
            if frame.index % every == 0:
                yield f"{source_name(source)}_{frame.index:06d}", source, frame.index, frame.image
        if video.decoded == 0:
            raise InputDataError(f"video file has no readable frame: {source}")
    finally:
        video.close()


def yolo_lines(found: tuple[Detection, ...], width: int, height: int) -> str:
    """The boxes, clipped to the picture, as the lines of a YOLO label file."""
    lines = []
    for detection in found:
        box = detection.box
        x1, y1 = max(box.x1, 0.0), max(box.y1, 0.0)
        x2, y2 = min(box.x2, float(width)), min(box.y2, float(height))
        label = LabelBox((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
        lines.append(label.yolo_line(width, height) + "\n")
    return "".join(lines)


def draft(sources: list[Path], out: Path, settings: DraftSettings) -> list[DraftFrame]:
    """Write the kept frames, their labels and review.csv under OUT; returns the kept frames."""
    calibration = load_calibration(settings.calibration) if settings.calibration is not None else None
    detectors: dict[tuple[int, int], BallDetector] = {}
    kept: list[DraftFrame] = []
    try:
        for source in sources:
            for name, origin, index, image in frames_of(source, settings.every):
                height, width = image.shape[:2]
                detector = detectors.get((width, height))
                if detector is None:
                    crop = calibration.scaled(width, height).bounds() if calibration is not None else None
                    config = DetectorConfig(path=settings.model, confidence=settings.doubt, crop=crop)
                    detector = detectors[(width, height)] = BallDetector.open(config, (width, height))
                found = detector.detect(Frame(index, 0.0, image)).items
                labelled = tuple(d for d in found if d.confidence >= settings.confidence)
                doubtful = tuple(d for d in found if d.confidence < settings.confidence)
                if not found and not settings.empty:
                    continue
                ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                if not ok:
                    raise OSError(f"{source} frame {index}: cannot encode")
                write_atomic(out / "images" / f"{name}.jpg", jpeg.tobytes())
                write_text_atomic(out / "labels" / f"{name}.txt", yolo_lines(labelled, width, height))
                kept.append(DraftFrame(name, origin, index, labelled, doubtful))
    finally:
        for detector in detectors.values():
            detector.close()
    write_text_atomic(out / "review.csv", review_table(kept))
    if settings.calibration is not None:
        # The folder then says what the daemon looks at: bench/footage.py crops to the same rig.
        write_atomic(out / "calibration.json", settings.calibration.read_bytes())
    return kept


def review_table(kept: list[DraftFrame]) -> str:
    """review.csv: the frames with doubtful boxes first, most doubtful first, then the rest in order."""
    rows = sorted(kept, key=lambda f: (-len(f.doubtful), -max((d.confidence for d in f.doubtful), default=0)))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(REVIEW_COLUMNS)
    for frame in rows:
        lowest = min((d.confidence for d in frame.labelled), default=None)
        highest = max((d.confidence for d in frame.doubtful), default=None)
        writer.writerow((
            f"{frame.name}.jpg", str(frame.source), frame.index, len(frame.labelled), len(frame.doubtful),
            _confidence_text(lowest), _confidence_text(highest),
        ))  # fmt: skip
    return text.getvalue()


def _confidence_text(confidence: float | None) -> str:
    # Cut, not rounded: a doubtful box just under the label confidence must not read as reaching it.
    return "" if confidence is None else f"{math.floor(confidence * 1000) / 1000:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", type=Path, nargs="+", help="videos, or folders of pictures")
    parser.add_argument("--out", type=Path, required=True, help="folder for images/, labels/ and review.csv")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "ball.onnx")
    parser.add_argument("--confidence", type=float, default=LABEL_CONFIDENCE, help="labelled from here")
    parser.add_argument("--doubt", type=float, default=DOUBT, help="doubtful from here")
    parser.add_argument("--every", type=int, default=EVERY, help="one video frame in N")
    parser.add_argument("--empty", action="store_true", help="keep frames with no ball too")
    parser.add_argument("--calibration", type=Path, help="look only at the rig this calibration bounds")
    args = parser.parse_args()
    if not 0 < args.doubt <= args.confidence <= 1:
        parser.error(f"need 0 < --doubt <= --confidence <= 1, not {args.doubt} and {args.confidence}")
    if args.every < 1:
        parser.error(f"--every must be 1 or more, not {args.every}")
    for source in args.sources:
        if not source.exists():
            parser.error(f"{source}: no such file or folder")
    stems = [source_name(source) for source in args.sources]
    for stem in sorted({s for s in stems if stems.count(s) > 1}):
        parser.error(f"two sources named {stem}: their frames would take the same names")
    try:
        BallDetector.open(DetectorConfig(path=args.model)).close()
        if args.calibration is not None:
            load_calibration(args.calibration)
    except (ModelError, CalibrationError) as error:
        parser.error(str(error))
    settings = DraftSettings(
        args.model, args.confidence, args.doubt, args.every, args.empty, args.calibration
    )
    try:
        kept = draft(args.sources, args.out, settings)
    except (OSError, PuttDaemonError) as error:
        parser.exit(65, f"{parser.prog}: error: {error}\n")
    doubtful = sum(1 for frame in kept if frame.doubtful)
    labels = sum(len(frame.labelled) for frame in kept)
    print(f"{len(kept)} frames kept, {labels} balls labelled, {doubtful} frames to review: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
