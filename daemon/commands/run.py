"""`putt-daemon run`: the service on the configured camera, as systemd starts it.

Adds what only the long-running service has around the stages: systemd's notify protocol (READY, STATUS,
WATCHDOG, RELOADING, STOPPING), the state file `putt-daemon status` reads, signal handling, and reloading the
settings on SIGHUP or when the env file is replaced.
"""

from __future__ import annotations

import argparse
import os

from daemon.configuration import LoadedSettings, load_settings
from daemon.memory import bound_heap_growth
from daemon.outlets.notify import SystemdNotifier
from daemon.outlets.statefile import STATE_FILE, StateFile
from daemon.service import Service, ServicePlan, install_signal_handlers
from daemon.settings import DEFAULT_ENV_FILE, Settings


def run_command(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon run`."""
    settings = loaded.settings
    env_file = args.env_file or loaded.env_file or DEFAULT_ENV_FILE

    def reload_settings() -> Settings:
        return load_settings(args.env_file).settings

    bound_heap_growth()  # a service that runs for months must not keep the peak of each check
    notifier = SystemdNotifier.from_environment(os.environ)
    state_file = StateFile(settings.state.dir / STATE_FILE, interval=settings.state.status_interval)
    plan = ServicePlan(
        mode="live", deliver=True, mqtt=True, event_sinks=(state_file, notifier), lifecycle=notifier,
        reload_settings=reload_settings, env_file=None if args.no_watch else env_file,
    )  # fmt: skip
    service = Service(settings, plan)
    install_signal_handlers(service)
    state_file.start()
    service.run()
    return 0
