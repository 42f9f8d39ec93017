"""The service: the one place that builds the stages from `Settings` and a calibration, and runs them.

`wiring` maps settings onto stage configs and holds the frame-source registry, `plan` says what a command asks
for (live or replay, sinks, observers, clock), `core` builds, runs and stops the stages.
"""

from daemon.service.core import Service
from daemon.service.plan import Clock, FrameObserver, Lifecycle, ServicePlan, ServiceResult
from daemon.service.signals import install_signal_handlers
from daemon.service.wiring import StageConfigs, camera_openers, changed_stages, replay_source, stage_configs

__all__ = [
    "Clock",
    "FrameObserver",
    "Lifecycle",
    "Service",
    "ServicePlan",
    "ServiceResult",
    "StageConfigs",
    "camera_openers",
    "changed_stages",
    "install_signal_handlers",
    "replay_source",
    "stage_configs",
]
