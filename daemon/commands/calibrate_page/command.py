"""`putt-daemon calibrate --serve [--port 8737] [--listen ADDR] [--image IMG]`: the calibration page.

Serves the page while the command runs and stops on Ctrl-C or SIGTERM (exit 0). The frame is `--image`, or
the current one from the running service or the camera (as `snapshot` takes it). The page starts from the
configured calibration (PUTT_CALIBRATION_FILE), or with no file yet from the regions proposed from the frame.
It saves to that file and asks a running service to reload it. It listens on 127.0.0.1; `--listen ADDR`
opens it to the network, and then every request needs the one-time token in the printed URL.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from daemon import configuration
from daemon.commands.arguments import read_image
from daemon.commands.calibrate_page.page import CalibrationPage, PageConfig, sighup
from daemon.commands.calibrate_page.server import PageServer
from daemon.commands.snapshot import running_service, take_still
from daemon.errors import CalibrationError, PuttDaemonError
from daemon.models import Image
from daemon.service.wiring import stage_configs
from daemon.vision.calibration import Calibration, load_calibration
from daemon.vision.proposal import propose

DEFAULT_PORT = 8737
WILDCARDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104  # names for "every interface", to print a host


def starting_calibration(path: Path, frame: Image) -> tuple[Calibration | None, str | None]:
    """The calibration the page starts from: the file's (scaled to FRAME), else one proposed from FRAME, else
    none; and a notice for the user when it is not the file's."""
    height, width = frame.shape[:2]
    if not path.is_file():
        proposal = propose(frame)
        if proposal is None:
            return None, f"No calibration at {path} yet, and no rig found in the frame: click the regions."
        return (
            proposal.calibration,
            f"No calibration at {path} yet: these regions are proposed from the frame.",
        )
    try:
        return load_calibration(path).scaled(width, height), None
    except CalibrationError as err:
        return None, f"The current calibration cannot be used ({err}): click the regions again."


def page_url(host: str, port: int, token: str | None) -> str:
    """The URL to open; a wildcard address is shown as this machine's name."""
    shown = socket.gethostname() if host in WILDCARDS else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + ("" if token is None else f"?token={token}")


def _wait_for_stop() -> None:
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    while not stop.wait(0.5):
        pass


def serve_page(args: argparse.Namespace) -> int:
    """Entry point of `putt-daemon calibrate --serve`."""
    settings = configuration.load_settings(args.env_file).settings
    configs = stage_configs(settings)
    image: Path | None = args.image
    frames: Callable[[], Image] = (
        (lambda: take_still(settings).image) if image is None else (lambda: read_image(image))
    )
    first = frames()
    start, notice = starting_calibration(configs.calibration_file, first)
    token = None if args.listen is None else secrets.token_urlsafe(24)
    config = PageConfig(configs.calibration_file, token, lambda: sighup(running_service(configs.state_dir)))
    page = CalibrationPage(config, frames, start, notice, first=first)
    host = "127.0.0.1" if args.listen is None else args.listen
    try:
        server = PageServer((host, args.port), page)
    except OSError as err:
        raise PuttDaemonError(f"cannot listen on {host} port {args.port}: {err.strerror or err}") from err
    port = server.server_address[1]
    print(f"calibration page for {configs.calibration_file} ({first.shape[1]}x{first.shape[0]} frame):")
    print(f"  {page_url(host, port, token)}", flush=True)
    print("stop it with Ctrl-C", flush=True)
    thread = threading.Thread(target=server.serve_forever, name="calibration-page", daemon=True)
    thread.start()
    try:
        _wait_for_stop()
    finally:
        server.shutdown()
        server.server_close()
    print("calibration page stopped")
    return 0
