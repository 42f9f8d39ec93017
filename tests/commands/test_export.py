"""`putt-daemon export`: a tiny model round-trips into a verified ONNX file and sidecar; INT8; refusals."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from daemon.cli import build_parser
from daemon.commands.export import INSTALL_HINT, export_command, synthetic_frames, verify
from daemon.models import Frame
from daemon.vision.detector import BallDetector, DetectorConfig
from tests.conftest import CONF, REPO, build_weights, export_onnx

os.environ.setdefault("YOLO_OFFLINE", "1")


def export_args(weights: Path, out: Path, **overrides: object) -> argparse.Namespace:
    """The namespace `putt-daemon export WEIGHTS --out OUT` parses to, with OVERRIDES applied."""
    parsed = build_parser().parse_args(["export", str(weights), "--out", str(out)])
    return argparse.Namespace(**(vars(parsed) | overrides))


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export-weights")
    path = build_weights(folder / "best.pt")
    (folder / "train_meta.json").write_text(json.dumps({"training": {"epochs": 3, "imgsz": 320}}))
    return path


def test_export_round_trips(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, image in enumerate(synthetic_frames(3, seed=11)):
        cv2.imwrite(str(frames / f"{i}.png"), image)
    out = tmp_path / "models"
    assert export_command(export_args(weights, out, frames=frames)) == 0
    assert "boxes on 3 frames agree within 1 px" in capsys.readouterr().out

    sidecar = json.loads((out / "ball.json").read_text())
    model = out / "ball.onnx"
    assert sidecar["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert sidecar["source_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert sidecar["names"] == {"0": "ball"}
    assert sidecar["imgsz"] == [320, 320]
    assert sidecar["layout"] == "raw"
    assert sidecar["training"] == {"epochs": 3, "imgsz": 320}
    assert sidecar["verified"]["frames"] == 3
    assert sidecar["verified"]["boxes"] > 0
    assert sidecar["exported_at"].endswith("+00:00")
    assert sidecar["ultralytics_version"]
    assert sorted(p.name for p in out.iterdir()) == ["ball.json", "ball.onnx"]
    assert sorted(p.name for p in weights.parent.iterdir() if p.suffix == ".onnx") == []

    detector = BallDetector.open(DetectorConfig(model, sha256=sidecar["sha256"], confidence=CONF))
    assert detector.detect(Frame(0, 0.0, synthetic_frames(1)[0])).items


@pytest.fixture(scope="module")
def yolo26_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained YOLO26 (one-to-one head) built from its yaml, one class named ball."""
    import ultralytics
    import yaml
    from ultralytics import YOLO

    folder = tmp_path_factory.mktemp("y26")
    spec = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/26/yolo26.yaml").read_text())
    spec |= {"nc": 1, "scales": {"n": [0.5, 0.25, 256]}}
    (folder / "y26.yaml").write_text(yaml.safe_dump(spec))
    model = YOLO(str(folder / "y26.yaml"))
    model.model.names = {0: "ball"}
    model.save(str(folder / "y26.pt"))
    return folder / "y26.pt"


def test_export_yolo26_exports_its_one_to_one_head_when_asked(yolo26_weights: Path, tmp_path: Path) -> None:
    assert export_command(export_args(yolo26_weights, tmp_path / "out", layout="end2end")) == 0
    assert json.loads((tmp_path / "out" / "ball.json").read_text())["layout"] == "end2end"
    detector = BallDetector.open(DetectorConfig(tmp_path / "out" / "ball.onnx"))
    assert detector.info.layout == "end2end"


def test_export_yolo26_writes_the_raw_head_unless_told(yolo26_weights: Path, tmp_path: Path) -> None:
    # The one-to-many head with NMS measures better on every model trained here (models/README.md).
    assert export_command(export_args(yolo26_weights, tmp_path / "out")) == 0
    assert json.loads((tmp_path / "out" / "ball.json").read_text())["layout"] == "raw"


def test_export_runs_at_the_input_size_the_weights_were_trained_at(weights: Path, tmp_path: Path) -> None:
    import torch

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    checkpoint["train_args"] = {"imgsz": 256}
    trained = tmp_path / "trained" / "best.pt"
    trained.parent.mkdir()
    torch.save(checkpoint, trained)
    assert export_command(export_args(trained, tmp_path / "out")) == 0
    assert json.loads((tmp_path / "out" / "ball.json").read_text())["imgsz"] == [256, 256]
    assert export_command(export_args(trained, tmp_path / "told", imgsz=352)) == 0
    assert json.loads((tmp_path / "told" / "ball.json").read_text())["imgsz"] == [352, 352]


def test_int8_is_written_and_compared(
    weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"
    assert export_command(export_args(weights, out, int8=True, name="tiny")) == 0
    report = capsys.readouterr().out
    assert "median ms (1 thread)" in report
    assert "default: " in report
    sidecar = json.loads((out / "tiny.json").read_text())
    int8 = sidecar["int8"]
    assert int8["sha256"] == hashlib.sha256((out / "tiny.int8.onnx").read_bytes()).hexdigest()
    assert int8["fp32_boxes"] > 0
    assert 0 <= int8["matched"] <= int8["fp32_boxes"]
    assert int8["recommended"] == (
        int8["int8_median_ms"] < int8["fp32_median_ms"]
        and int8["matched"] == int8["fp32_boxes"] == int8["int8_boxes"]
    )
    quantized = BallDetector.open(DetectorConfig(out / "tiny.int8.onnx", confidence=CONF))
    assert quantized.info.names == {0: "ball"}
    assert quantized.info.layout == "raw"


def test_a_disagreeing_model_is_reported(weights: Path, tmp_path: Path) -> None:
    from ultralytics import YOLO

    stranger = export_onnx(build_weights(tmp_path / "other.pt", seed=7), tmp_path / "other.onnx")
    detector = BallDetector.open(DetectorConfig(stranger, confidence=0.25))
    verdict = verify(YOLO(str(weights)), detector, synthetic_frames(2))
    assert verdict.problems
    assert verdict.problems[0].startswith("frame 0: ")


def test_missing_weights_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert export_command(export_args(tmp_path / "nope.pt", tmp_path)) == 66
    assert (
        capsys.readouterr().err.strip() == f"putt-daemon export: {tmp_path / 'nope.pt'}: no such weights file"
    )
    assert not list(tmp_path.iterdir())


def test_without_the_extra_one_line_and_exit_2(tmp_path: Path, cli_env: dict[str, str]) -> None:
    # A None entry in sys.modules is how Python spells "this package is not installed".
    code = (
        "import sys\n"
        "sys.modules['ultralytics'] = None\n"
        "from daemon.cli import main\n"
        f"sys.exit(main(['export', {str(tmp_path / 'best.pt')!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == INSTALL_HINT
    assert result.stdout == ""


def test_speed_benchmark_builds_its_default_model_and_prints_every_row(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.detector_speed", "--frames", "2", "--runs", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_env | {"YOLO_OFFLINE": "1"},
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout[result.stdout.index("detector speed, 1 runs x 2 frames") :].splitlines()
    rows = [line.split()[0] for line in table[2:7]]
    assert rows == ["onnxruntime", "ours", "ultralytics", "ultralytics", "Proof"]
