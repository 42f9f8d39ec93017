"""tools.draft_labels: real footage to training frames with draft labels, and training taking them in."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.models import Box, Detection
from daemon.vision.calibration import load_calibration
from tools.draft_labels import DraftFrame, review_table
from tools.real_paste import read_labels
from tools.train_detector import extra_real_images, link_real

REPO = Path(__file__).resolve().parents[1]
SEED = 7311  # a held-out clip seed: never trained on


def run_tool(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tools.draft_labels", *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated session on video, with its truth and calibration, as footage from a box would come."""
    out = tmp_path_factory.mktemp("clip")
    simulate = [sys.executable, "-m", "daemon", "simulate"]
    command = [*simulate, "--out", str(out), "--putts", "3", "--seed", str(SEED)]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def drafted(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drafted")
    done = run_tool(
        clip / "clip.mp4", "--out", out, "--every", "4", "--calibration", clip / "calibration.json"
    )
    assert done.returncode == 0, done.stderr
    return out


def truth_boxes(clip: Path) -> list[list[tuple[Box, bool]]]:
    """Each frame's balls: box and whether a putter or foot hides it."""
    truth = json.loads((clip / "truth.json").read_text())
    return [[(Box(*row[1:5]), bool(row[5])) for row in frame] for frame in truth["frame_boxes"]]


def near(box: Box, ball: Box) -> bool:
    """Whether BOX is on BALL: centres less than a ball's width apart. A fast ball's motion blur trails it, so
    the box of its blurred image lags the ball's true place by up to half a diameter."""
    return float(np.hypot(box.center.x - ball.center.x, box.center.y - ball.center.y)) < ball.x2 - ball.x1


def test_labels_are_the_balls_of_the_frames_kept(clip: Path, drafted: Path) -> None:
    truth = truth_boxes(clip)
    x1, y1, x2, y2 = load_calibration(clip / "calibration.json").bounds()
    kept = {int(p.stem.rsplit("_", 1)[1]): p for p in (drafted / "images").glob("clip_*.jpg")}
    assert kept
    assert all(index % 4 == 0 for index in kept)
    labels = hits = seen = 0
    for index in range(0, len(truth), 4):
        visible = [
            box for box, hidden in truth[index]
            if not hidden and x1 <= box.center.x <= x2 and y1 <= box.center.y <= y2
        ]  # fmt: skip
        if index not in kept:
            assert not visible, f"frame {index} shows a ball but was not kept"
            continue
        image = cv2.imread(str(kept[index]))
        assert image is not None
        height, width = image.shape[:2]
        assert (width, height) == (640, 480)
        found = [
            Box(b.x - b.width / 2, b.y - b.height / 2, b.x + b.width / 2, b.y + b.height / 2)
            for b in read_labels(drafted / "labels" / f"{kept[index].stem}.txt", width, height)
        ]
        for box in found:
            labels += 1
            assert any(near(box, ball) for ball, _ in truth[index]), f"frame {index}: {box} is no ball"
        seen += len(visible)
        hits += sum(any(near(box, ball) for box in found) for ball in visible)
    assert labels >= 50
    assert hits >= 0.95 * seen


def test_the_review_table_lists_every_kept_frame_doubtful_first(clip: Path, tmp_path: Path) -> None:
    # A label confidence no box reaches leaves every box doubtful, a middle one splits them.
    done = run_tool(
        clip / "clip.mp4", "--out", tmp_path, "--every", "10", "--confidence", "0.8", "--doubt", "0.05"
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "review.csv").read_text().splitlines()))
    images = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert sorted(row["image"] for row in rows) == images
    doubtful = [int(row["doubtful"]) for row in rows]
    assert doubtful == sorted(doubtful, reverse=True)
    for row in rows:
        lines = (tmp_path / "labels" / row["image"].replace(".jpg", ".txt")).read_text().splitlines()
        assert len(lines) == int(row["labelled"])
        if row["lowest_labelled"]:
            assert float(row["lowest_labelled"]) >= 0.8
        if row["highest_doubtful"]:
            assert 0.05 <= float(row["highest_doubtful"]) < 0.8
    assert f"{len(rows)} frames kept" in done.stdout


def test_the_review_table_never_shows_a_doubtful_box_at_the_label_confidence() -> None:
    box = Box(10, 10, 30, 30)
    frame = DraftFrame(
        "clip_000010", Path("clip.mp4"), 10, (Detection(box, 0.8),), (Detection(box, 0.79996),)
    )
    rows = list(csv.DictReader(review_table([frame]).splitlines()))
    assert (rows[0]["lowest_labelled"], rows[0]["highest_doubtful"]) == ("0.800", "0.799")


def test_a_folder_of_pictures_keeps_empty_frames_only_when_asked(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rng = np.random.default_rng(3)
    mat = np.zeros((480, 640, 3), np.uint8)
    mat[:] = (40, 140, 50)
    cv2.imwrite(str(pictures / "a_mat.png"), mat + rng.integers(0, 12, mat.shape, dtype=np.uint8))
    (pictures / "notes.txt").write_text("not a picture")
    plain = run_tool(pictures, "--out", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    assert "0 frames kept" in plain.stdout
    assert not list((tmp_path / "plain").glob("images/*"))
    done = run_tool(pictures, "--out", tmp_path / "all", "--empty")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "all" / "images").iterdir()] == ["pictures_a_mat.jpg"]
    assert (tmp_path / "all" / "labels" / "pictures_a_mat.txt").read_text() == ""
    rows = list(csv.DictReader((tmp_path / "all" / "review.csv").read_text().splitlines()))
    assert [(row["source"], row["labelled"], row["doubtful"]) for row in rows] == [
        (str(pictures / "a_mat.png"), "0", "0")
    ]


def test_bad_input_is_refused_in_one_line(clip: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"\0" * 64)
    cases = [
        ((tmp_path / "missing.mp4", "--out", tmp_path / "o"), 2, "missing.mp4: no such file or folder"),
        (
            (clip / "clip.mp4", "--out", tmp_path / "o", "--doubt", "0.6"),
            2,
            "need 0 < --doubt <= --confidence",
        ),
        ((clip / "clip.mp4", "--out", tmp_path / "o", "--every", "0"), 2, "--every must be 1 or more"),
        ((clip / "clip.mp4", "--out", tmp_path / "o", "--model", bad_model), 2, "bad.onnx"),
        ((clip / "clip.mp4", "--out", tmp_path / "o", "--calibration", junk), 2, "junk.mp4"),
        ((clip / "clip.mp4", clip / "clip.mp4", "--out", tmp_path / "o"), 2, "two sources named clip"),
        ((junk, "--out", tmp_path / "o"), 65, "video file is not a readable video (damaged or cut short?)"),
    ]
    for args, code, message in cases:
        done = run_tool(*args, cwd=tmp_path)
        assert done.returncode == code, (args, done.stderr)
        assert "Traceback" not in done.stderr
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1
        assert message in errors[0]
        assert errors[0] == done.stderr.strip().splitlines()[-1]


def test_training_takes_drafted_frames_and_refuses_unlabelled_ones(drafted: Path, tmp_path: Path) -> None:
    images = extra_real_images(drafted)
    data = tmp_path / "data"
    (data / "images" / "train").mkdir(parents=True)
    (data / "labels" / "train").mkdir(parents=True)
    link_real(images, drafted / "labels", data, 2, "extra0r")
    linked = sorted((data / "images" / "train").iterdir())
    assert len(linked) == 2 * len(images)
    for link in linked:
        source = link.resolve()
        assert source.parent == (drafted / "images").resolve()
        label = data / "labels" / "train" / f"{link.stem}.txt"
        assert label.read_text() == (drafted / "labels" / f"{source.stem}.txt").read_text()
    (drafted / "labels" / f"{images[0].stem}.txt").rename(tmp_path / "aside.txt")
    try:
        out = tmp_path / "run"
        out.mkdir()
        command = [
            sys.executable,
            "-m",
            "tools.train_detector",
            "--out",
            str(out),
            "--real-extra",
            str(drafted),
        ]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2
        assert f"1 of {len(images)} pictures have no label file" in done.stderr
        assert not any(out.iterdir())
    finally:
        (tmp_path / "aside.txt").rename(drafted / "labels" / f"{images[0].stem}.txt")
