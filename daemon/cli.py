"""The `putt-daemon` command line: parses arguments, loads settings once, configures logging, dispatches.

Exit codes: 0 done, 1 failed, 2 usage or not available, 78 (EX_CONFIG) bad settings or input files.
Heavy imports (OpenCV, ONNX Runtime, the simulator) happen inside the commands that need them, so
`check-config` and `--help` stay fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from daemon import __version__
from daemon.errors import CalibrationError, ConfigError, ModelError, PuttDaemonError

EX_OK = 0
EX_FAIL = 1
EX_USAGE = 2
EX_CONFIG = 78

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def _not_available(command: str) -> Handler:
    def handler(_args: argparse.Namespace) -> int:
        print(f"putt-daemon {command}: not available yet in this version", file=sys.stderr)
        return EX_USAGE

    return handler


def _check_config(args: argparse.Namespace) -> int:
    from daemon import configuration  # noqa: PLC0415  # keeps --help free of pydantic start-up cost

    if args.example:
        print(configuration.env_example(), end="")
        return EX_OK
    loaded = configuration.load_settings(args.env_file)
    source = str(loaded.env_file) if loaded.env_file else "(no env file: environment and defaults)"
    print(f"# settings from {source}")
    for line in configuration.effective_lines(loaded.settings):
        print(line)
    for name in loaded.unknown:
        print(f"warning: {configuration.typo_hint(name)}", file=sys.stderr)
    return EX_OK


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
        help="env file to read (default /etc/putt-daemon/putt-daemon.env)",
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
    parser = argparse.ArgumentParser(prog="putt-daemon", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"putt-daemon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_common(sub)
        sub.set_defaults(handler=handler)
        return sub

    command(
        "run",
        "Run the daemon: camera to putts to sessions to uploads (what systemd starts).",
        _not_available("run"),
    )
    demo = command(
        "demo",
        "Run the whole pipeline on a simulated session and show the putts and the report.",
        _lazy("daemon.commands.demo", "demo_command"),
    )
    demo.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    demo.add_argument("--putts", type=int, default=8, help="putts to simulate (default 8)")
    demo.add_argument("--out", type=Path, default=None, help="keep the clip and reports here (default: none)")

    sim = command(
        "simulate",
        "Render a simulated putting session or a detector training dataset.",
        _lazy("daemon.commands.simulate", "simulate_command"),
    )
    from daemon.commands.simulate_args import add_simulate_arguments  # noqa: PLC0415  # argparse only, no numpy

    add_simulate_arguments(sim)

    process = command(
        "process",
        "Run the vision pipeline on a recorded clip and write session reports.",
        _lazy("daemon.commands.process", "process_command"),
    )
    process.add_argument("video", type=Path, help="video file to process")
    process.add_argument(
        "--calibration", type=Path, default=None, help="calibration file (default: the setting)"
    )
    process.add_argument(
        "--out", type=Path, default=Path("putt-reports"), help="report folder (default putt-reports)"
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

    export = command(
        "export",
        "Export an Ultralytics detection model to ONNX with a sidecar (extra 'export').",
        _lazy("daemon.commands.export", "export_command"),
    )
    export.add_argument("weights", type=Path, help="the .pt weights to export")
    export.add_argument("--imgsz", type=int, default=320, help="network input size (default 320)")
    export.add_argument("--out", type=Path, default=Path("models"), help="output folder (default models/)")
    export.add_argument(
        "--name", default="ball", help="output file stem (default ball: ball.onnx, ball.json)"
    )
    export.add_argument("--int8", action="store_true", help="also write a statically quantized INT8 model")
    export.add_argument(
        "--layout",
        choices=["auto", "raw", "end2end"],
        default="auto",
        help="output head: end2end (one-to-one, no NMS) when the model has one, else raw; or force either",
    )
    export.add_argument(
        "--frames",
        type=Path,
        default=None,
        help="images to check the export against and calibrate INT8 with (default: simulator frames)",
    )

    check = command(
        "check-config", "Validate the settings and print the effective values, secrets masked.", _check_config
    )
    check.add_argument(
        "--example", action="store_true", help="print the documented env-file template instead"
    )

    calibrate = command(
        "calibrate",
        "Check a calibration file and draw its regions.",
        _lazy("daemon.commands.calibrate", "calibrate_command"),
    )
    calibrate.add_argument("--check", type=Path, metavar="FILE", help="calibration file to check")
    calibrate.add_argument("--image", type=Path, help="a camera still to draw the regions on")
    calibrate.add_argument("--out", type=Path, help="where to write the drawing (default FILE.png)")

    command(
        "queue", "List the session reports waiting for upload and those set aside.", _not_available("queue")
    )
    command("status", "Print the running daemon's last published status.", _not_available("status"))
    return parser


def _lazy(module: str, name: str) -> Handler:
    """A handler imported only when its command runs."""

    def handler(args: argparse.Namespace) -> int:
        import importlib  # noqa: PLC0415  # deferred on purpose

        target: Handler = getattr(importlib.import_module(module), name)
        return target(args)

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `putt-daemon` console script."""
    args = build_parser().parse_args(argv)
    from daemon.logs import configure_logging  # noqa: PLC0415  # after argparse so --help stays quick

    configure_logging(args.log_level or "INFO")
    try:
        result: int = args.handler(args)
    except ConfigError as err:
        print("putt-daemon: bad configuration:", file=sys.stderr)
        for line in err.lines:
            print(f"  {line}", file=sys.stderr)
        return EX_CONFIG
    except (CalibrationError, ModelError) as err:
        print(f"putt-daemon: {err}", file=sys.stderr)
        return EX_CONFIG
    except PuttDaemonError as err:
        print(f"putt-daemon: {err}", file=sys.stderr)
        return EX_FAIL
    except KeyboardInterrupt:
        return 130
    return result
