"""The `putt-daemon` command line: parses arguments, loads settings once, configures logging, dispatches.

Heavy imports (OpenCV, ONNX Runtime, the simulator) happen inside the commands that need them, so `--help`
and `check-config` stay fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from daemon import __version__
from daemon.closed_pipe import run_main
from daemon.errors import (
    CalibrationError,
    CameraError,
    ConfigError,
    InputDataError,
    InputMissingError,
    ModelError,
    OutputError,
    PuttDaemonError,
)

if TYPE_CHECKING:
    from daemon.configuration import LoadedSettings

EX_OK = 0
EX_FAIL = 1
EX_USAGE = 2
EX_NOT_RUNNING = 3
EX_DATAERR = 65
EX_NOINPUT = 66
EX_CANTCREAT = 73
EX_CONFIG = 78

DESCRIPTION = """\
putt-daemon watches a putting mat through a camera, counts every putt as MAKE or MISS with the Proof of Putt
detail, groups putts into sessions and keeps each session's report until it is delivered. `run` is the
service systemd starts; `demo` shows the whole thing on a simulated mat with no camera, server or broker."""

EPILOG = """\
settings: PUTT_* environment variables and the env file /etc/putt-daemon/putt-daemon.env (see check-config).

exit codes:
  0   done                          3   status: the service is not running
  1   failed (see the message)      65  bad input data (a damaged video, a file that is not a model)
  2   wrong usage                   66  an input file or the camera is missing
  73  an output cannot be created   78  bad settings, calibration or model"""

logger = logging.getLogger(__name__)

Plain = Callable[[argparse.Namespace], int]
WithSettings = Callable[[argparse.Namespace, "LoadedSettings"], int]


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand's handler, imported only when it runs; `settings` says whether it needs them loaded."""

    module: str
    function: str
    settings: bool
    quiet: bool = False  # offline commands print their own results; logs below WARNING only on request

    def __call__(self, args: argparse.Namespace) -> int:
        import importlib  # noqa: PLC0415  # deferred on purpose

        from daemon import configuration  # noqa: PLC0415  # keeps --help free of pydantic start-up cost

        handler = getattr(importlib.import_module(self.module), self.function)
        if not self.settings:
            for name in configuration.unknown_names(args.env_file):
                print(f"warning: {configuration.typo_hint(name)}", file=sys.stderr)
            plain: Plain = handler
            return plain(args)
        loaded = configuration.load_settings(args.env_file)
        for name in loaded.unknown:
            print(f"warning: {configuration.typo_hint(name)}", file=sys.stderr)
        default_level = "WARNING" if self.quiet else loaded.settings.log.level
        logging.getLogger().setLevel(args.log_level or default_level)
        with_settings: WithSettings = handler
        return with_settings(args, loaded)


def _utc_epoch(text: str) -> float:
    """An ISO-8601 time (Z or an offset; naive means UTC) as epoch seconds, for argparse."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from err
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        help="env file to read (default /etc/putt-daemon/putt-daemon.env when it exists)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        type=str.upper,
        default=None,
        help="override PUTT_LOG_LEVEL",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="putt-daemon",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"putt-daemon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from daemon.commands.arguments import refuse_empty_values  # noqa: PLC0415  # argparse only

    def command(name: str, help_text: str, handler: Command, details: str = "") -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=f"{help_text}\n\n{details}" if details else help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        refuse_empty_values(sub)  # `--opt=--` is a usage error, never an empty value deep in a command
        _add_common(sub)
        sub.set_defaults(handler=handler)
        return sub

    run = command(
        "run",
        "Run the service: camera, putts, sessions and reports, day and night (what systemd starts).",
        Command("daemon.commands.run", "run_command", settings=True),
        "Needs a camera (PUTT_CAMERA_SOURCE), the model and a calibration. Reports go under the state\n"
        "folder (PUTT_STATE_DIR); SIGHUP or a replaced env file reloads the settings and calibration;\n"
        "SIGUSR1 writes the newest frame to snapshot.jpg there; SIGTERM stops cleanly.",
    )
    run.add_argument(
        "--no-watch",
        action="store_true",
        help="do not reload when the env file is replaced (SIGHUP still does)",
    )
    demo = command(
        "demo",
        "Run the service on a simulated putting mat and show each putt and the session report.",
        Command("daemon.commands.demo", "demo_command", settings=True, quiet=True),
        "No camera, server or broker needed. Stops by itself after one simulated session.",
    )
    from daemon.commands.demo_args import add_demo_arguments  # noqa: PLC0415  # argparse only

    add_demo_arguments(demo)

    sim = command(
        "simulate",
        "Render a simulated putting session, or a detector training dataset.",
        Command("daemon.commands.simulate", "simulate_command", settings=False),
    )
    from daemon.commands.simulate_args import add_simulate_arguments  # noqa: PLC0415  # argparse only, no numpy

    add_simulate_arguments(sim)

    process = command(
        "process",
        "Run the service on a recorded clip and write its session reports.",
        Command("daemon.commands.process", "process_command", settings=True, quiet=True),
        "Uses the model and calibration from the settings unless --calibration names one.",
    )
    _add_process_arguments(process)

    record = command(
        "record",
        "Record the configured camera to an mp4 clip, for process and for training the detector.",
        Command("daemon.commands.record", "record_command", settings=True, quiet=True),
        "The service owns the camera while it runs: stop it first. Ctrl-C or SIGTERM ends the recording and\n"
        "keeps the clip.",
    )
    from daemon.commands.arguments import RECORD_SECONDS  # noqa: PLC0415  # with the other argument types

    record.add_argument("out", type=Path, metavar="OUT.mp4", help="clip to write")
    seconds = f"how long at most, {RECORD_SECONDS} (default 60)"
    record.add_argument("--seconds", type=RECORD_SECONDS, default=60.0, metavar="S", help=seconds)

    export = command(
        "export",
        "Export an Ultralytics detection model to ONNX with a sidecar (needs the 'export' extra).",
        Command("daemon.commands.export", "export_command", settings=False),
    )
    _add_export_arguments(export)

    check = command(
        "check-config",
        "Validate the settings, the model and the calibration, and print the effective values.",
        Command("daemon.commands.check_config", "check_config_command", settings=True, quiet=True),
        "Secrets are masked. Exits 78 naming every problem.",
    )
    check.add_argument(
        "--example", action="store_true", help="print the documented env-file template instead"
    )

    calibrate = command(
        "calibrate",
        "Check a calibration file, and draw its regions when asked.",
        Command("daemon.commands.calibrate", "calibrate_command", settings=False),
        "Checking writes nothing; --draw writes the picture, each region labelled with its name.",
    )

    refuse_empty_values(calibrate)
    calibrate.add_argument("--check", type=Path, metavar="FILE", help="calibration file to check")
    calibrate.add_argument(
        "--image", type=Path, metavar="IMG", help="a camera still: check the calibration fits it, draw on it"
    )
    calibrate.add_argument(
        "--draw", type=Path, metavar="OUT.png", help="write the labelled regions to this .png or .jpg"
    )
    calibrate.add_argument(
        "--auto", type=Path, metavar="IMG", help="propose the regions from this still of the rig (with --out)"
    )
    calibrate.add_argument(
        "--out", type=Path, metavar="FILE", help="where --auto writes the proposed calibration"
    )
    _add_serve_arguments(calibrate)

    snapshot = command(
        "snapshot",
        "Save one current camera frame as a picture, the calibrated regions drawn on it when asked.",
        Command("daemon.commands.snapshot", "snapshot_command", settings=True, quiet=True),
        "While the service runs the frame comes from it (it owns the camera); otherwise the command opens\n"
        "the configured camera itself.",
    )
    snapshot.add_argument("out", type=Path, metavar="OUT.jpg", help="picture to write (.jpg or .png)")
    snapshot.add_argument("--draw", action="store_true", help="outline and name the calibrated regions")

    queue = command(
        "queue",
        "List, show, add, retry, purge or upload the sessions waiting for the web API.",
        Command("daemon.commands.queue", "queue_command", settings=True),
        "Works beside a running service. flush uploads everything pending now, in the foreground, and exits\n"
        "0 only when nothing is left pending.",
    )
    queue.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=("list", "show", "add", "retry", "retry-dead", "purge-dead", "flush"),
        help="what to do (default list)",
    )
    queue.add_argument("targets", nargs="*", metavar="ID|REPORT.json", help="session ids, or reports to add")

    status = command(
        "status",
        "Print what the running service is doing (exit 3 when it is not running).",
        Command("daemon.commands.status", "status_from_settings", settings=True),
    )
    status.add_argument("--json", action="store_true", help="print the state file as JSON")
    return parser


def _add_process_arguments(process: argparse.ArgumentParser) -> None:
    process.add_argument("video", type=Path, help="video file to process")
    process.add_argument(
        "--calibration", type=Path, default=None, help="calibration file (default: the setting)"
    )
    process.add_argument(
        "--out", type=Path, default=Path("putt-reports"), help="report folder (default ./putt-reports)"
    )
    process.add_argument(
        "--annotate", type=Path, default=None, metavar="OUT.mp4", help="write an annotated video"
    )
    process.add_argument(
        "--start",
        type=_utc_epoch,
        default=None,
        help="UTC time the clip started, ISO-8601 (default: file time minus its length)",
    )


def _add_serve_arguments(calibrate: argparse.ArgumentParser) -> None:
    calibrate.add_argument(
        "--serve",
        action="store_true",
        help="serve the calibration page: place and drag the regions on the current frame (or --image), save",
    )
    calibrate.add_argument(
        "--port", type=int, default=8737, help="the page's port (default 8737; 0: any free port)"
    )
    calibrate.add_argument(
        "--listen",
        metavar="ADDR",
        default=None,
        help="serve on ADDR (e.g. 0.0.0.0), not 127.0.0.1; the printed URL then carries a one-time token",
    )


def _add_export_arguments(export: argparse.ArgumentParser) -> None:
    from daemon.commands.arguments import IMGSZ, refuse_empty_values  # noqa: PLC0415  # argparse only

    refuse_empty_values(export)
    export.add_argument("weights", type=Path, help="the .pt weights to export")
    export.add_argument(
        "--imgsz",
        type=IMGSZ,
        default=None,
        metavar="PX",
        help=f"network input size, {IMGSZ} (default: the size the weights were trained at, else 320)",
    )
    export.add_argument("--out", type=Path, default=Path("models"), help="output folder (default models/)")
    export.add_argument(
        "--name", default="ball", help="output file stem (default ball: ball.onnx, ball.json)"
    )
    export.add_argument("--int8", action="store_true", help="also write a statically quantized INT8 model")
    export.add_argument(
        "--layout",
        choices=["raw", "end2end"],
        default="raw",
        help="output head: raw (one-to-many, NMS in the daemon; default, the one that measures better) or "
        "end2end (one-to-one, no NMS; YOLO26-style models only)",
    )
    export.add_argument(
        "--frames",
        type=Path,
        default=None,
        help="images to check the export against and calibrate INT8 with (default: simulator frames)",
    )


EXIT_CODES: tuple[tuple[type[PuttDaemonError], int], ...] = (
    (CalibrationError, EX_CONFIG),
    (ModelError, EX_CONFIG),
    (InputMissingError, EX_NOINPUT),
    (CameraError, EX_NOINPUT),
    (InputDataError, EX_DATAERR),
    (OutputError, EX_CANTCREAT),
)


def exit_code(err: PuttDaemonError) -> int:
    """The documented exit code of an error."""
    for kind, code in EXIT_CODES:
        if isinstance(err, kind):
            return code
    return EX_FAIL


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `putt-daemon` console script."""
    return run_main(lambda: run_command(argv))


def run_command(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # Before OpenCV loads: its own and FFmpeg's log lines ("moov atom not found") are not for our users; the
    # commands say what went wrong in their own words. An explicit setting still wins, for debugging.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    from daemon.logs import configure_logging  # noqa: PLC0415  # after argparse so --help stays quick

    configure_logging(args.log_level or "INFO")
    try:
        result: int = args.handler(args)
    except ConfigError as err:
        print("putt-daemon: bad configuration:", file=sys.stderr)
        for line in err.lines:
            print(f"  {line}", file=sys.stderr)
        return EX_CONFIG
    except PuttDaemonError as err:
        print(f"putt-daemon: {err}", file=sys.stderr)
        return exit_code(err)
    except KeyboardInterrupt:
        return 130
    return result
