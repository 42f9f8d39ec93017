"""`putt-daemon check-config`: the settings as the daemon reads them, and the model and calibration they name.

Prints every effective value with secrets and URL credentials masked; opens the model with ONNX Runtime and
parses the calibration exactly as `run` will, so a file that `run` would refuse is reported here (exit 78).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from daemon import configuration
from daemon.configuration import LoadedSettings
from daemon.errors import CalibrationError, ConfigError, ModelError
from daemon.service import stage_configs
from daemon.vision.calibration import load_calibration
from daemon.vision.detector import BallDetector
from daemon.vision.verifier import BallVerifier


def check_config_command(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon check-config`."""
    if args.example:
        print(configuration.env_example(), end="")
        return 0
    source = str(loaded.env_file) if loaded.env_file else "(no env file: environment and defaults)"
    print(f"# settings from {source}")
    for line in configuration.effective_lines(loaded.settings):
        print(line)
    configs = stage_configs(loaded.settings)
    problems: list[str] = []
    try:
        detector = BallDetector.open(replace(configs.detector, verifier=None))
    except ModelError as err:
        problems.append(f"PUTT_MODEL_PATH: {err}")
    else:
        info = detector.info
        size = f"{info.imgsz[1]}x{info.imgsz[0]}"
        if info.dynamic:  # the crop keeps its shape: only the short side is padded, up to the stride
            size = f"up to {size}, padded to multiples of {info.stride}"
        print(f"# model: {configs.detector.path} ({info.layout} layout, input {size})")
        detector.close()
    verifier = configs.detector.verifier
    try:
        if verifier is not None:
            BallVerifier.open(verifier)
    except ModelError as err:
        problems.append(f"PUTT_MODEL_VERIFIER: {err}")
    else:
        threshold = configs.detector.verifier_threshold
        print(f"# verifier: {verifier} (drops boxes below {threshold:g})" if verifier else "# verifier: none")
    try:
        calibration = load_calibration(configs.calibration_file)
    except CalibrationError as err:
        problems.append(f"PUTT_CALIBRATION_FILE: {err}")
    else:
        frame = calibration.frame_size
        made_at = f", made at {frame[0]}x{frame[1]}" if frame else ""
        print(f"# calibration: {configs.calibration_file} ({len(calibration.polygons)} regions{made_at})")
    if problems:
        raise ConfigError(problems)
    print("# all good", file=sys.stderr)
    return 0
