"""The service: the one place that builds the stages from `Settings` and a calibration and runs them.

`run`, `demo` and `process` all come through here. Start order: session sinks, event sinks, journals
(recovered), the frame feed, the vision stages; stop runs the same list in reverse, after the putt in flight
is decided and the open session is handed to the session sinks. The vision loop never waits on anything but
its frame feed: sinks do their slow work on their own threads. Signals only set flags (`request_stop`,
`request_reload`); the loop acts on them between two frames.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from daemon import __version__
from daemon.configuration import effective_lines
from daemon.delivery.reports import ReportContext, ReportFolder, build_report
from daemon.delivery.sessions import SessionKeeper
from daemon.errors import ConfigError, PuttDaemonError
from daemon.models import EndReason, Frame, PuttEvent, ServiceState, ServiceStatus, Session, SessionProgress
from daemon.outlets.mqtt import MqttOutlet
from daemon.service.delivery import Delivery
from daemon.service.plan import ServicePlan, ServiceResult
from daemon.service.wiring import StageConfigs, camera_openers, changed_stages, replay_source, stage_configs
from daemon.settings import Settings
from daemon.sinks import EventSink, SessionSink
from daemon.vision.calibration import Calibration, load_calibration
from daemon.vision.camera import (
    source_kind,
)
from daemon.vision.classifier import PuttClassifier
from daemon.vision.detector import BallDetector, file_sha256
from daemon.vision.feeds import FrameFeed, LiveFeed, ReplayFeed
from daemon.vision.meter import LoopMeter
from daemon.vision.motion_gate import MotionGate
from daemon.vision.pipeline import VisionPipeline
from daemon.vision.tracker import BallTracker

logger = logging.getLogger(__name__)

RETRY_UNDELIVERED = 30.0  # seconds between attempts to hand a session to a sink that failed
ENV_FILE_POLL = 2.0  # seconds between looks at the env file for a replacement


@dataclass(slots=True)
class _Vision:
    """The stages built for one calibration at one frame size."""

    pipeline: VisionPipeline
    calibration: Calibration
    size: tuple[int, int]


class Service:
    """Builds, runs and stops the stages for one command."""

    def __init__(self, settings: Settings, plan: ServicePlan) -> None:
        self._settings = settings
        self._plan = plan
        self._configs = stage_configs(settings, plan.state_dir)
        self._clock = plan.clock
        self._stop_reason: EndReason | None = None
        self._reload_requested = False
        self._end_requested = False
        self._state_requested = False
        self._calibration = self._load_calibration()
        BallDetector.open(self._configs.detector).close()  # a bad model stops the start, not the first frame
        self._model_sha = ""
        self._config_hash = ""
        self._identify()
        reports_dir = plan.reports_dir or self._configs.state_dir / "reports"
        self._report_folder = ReportFolder(reports_dir)
        self._delivery: Delivery | None = None
        first: SessionSink = self._report_folder
        if plan.deliver:
            self._delivery = Delivery(self._configs.spool, self._configs.upload)
            first = self._delivery.spool
        self._session_sinks: list[SessionSink] = [first, *plan.session_sinks]
        self._event_sinks: list[EventSink] = list(plan.event_sinks)
        self._mqtt: MqttOutlet | None = None
        if plan.mqtt and self._configs.mqtt is not None:
            self._mqtt = MqttOutlet(self._configs.mqtt, commands=self, version=__version__)
            self._event_sinks.append(self._mqtt)
        self._keeper = SessionKeeper(self._configs.sessions)
        self._feed: FrameFeed = self._make_feed()
        self._vision: _Vision | None = None
        self._meter = LoopMeter()
        self._putts: list[PuttEvent] = []
        self._sessions: list[Session] = []
        self._undelivered: list[Session] = []
        self._problems: dict[str, str] = {}
        self._started_mono = self._clock.monotonic()
        self._started_wall = self._clock.wall()
        self._last_frame_mono = self._started_mono
        self._last_state: tuple[object, ...] | None = None
        self._next_state = 0.0
        self._next_retry = 0.0
        self._next_env_poll = 0.0
        self._env_stamp = _file_stamp(plan.env_file)
        self._status: ServiceStatus = "starting"

    # --- control, from signal handlers or another thread

    def request_stop(self, reason: EndReason = "shutdown") -> None:
        """Finish the current frame, close the open session and stop."""
        self._stop_reason = reason

    def request_reload(self) -> None:
        """Re-read the settings between two frames."""
        self._reload_requested = True

    def end_session(self) -> None:
        """End the open session between two frames, as an operator asked (reason `command`)."""
        self._end_requested = True

    def publish_state_now(self) -> None:
        """Publish the state at the next turn of the loop, whether or not it changed."""
        self._state_requested = True

    # --- building

    def _load_calibration(self) -> Calibration:
        return load_calibration(self._plan.calibration_file or self._configs.calibration_file)

    def _calibration_path(self) -> Path:
        return self._plan.calibration_file or self._configs.calibration_file

    def _make_feed(self) -> FrameFeed:
        config = self._configs.camera
        if self._plan.mode == "live":
            return LiveFeed(config, camera_openers()[source_kind(config.source)], self._clock.monotonic)
        return ReplayFeed(lambda: replay_source(config))

    def _build_vision(self, width: int, height: int) -> _Vision:
        calibration = self._calibration.scaled(width, height)
        configs = self._configs
        crop = calibration.bounds()
        detector = BallDetector.open(replace(configs.detector, crop=crop))
        gate = None if configs.gate is None else MotionGate(replace(configs.gate, crop=crop))
        pipeline = VisionPipeline(
            detector=detector,
            gate=gate,
            tracker=BallTracker(configs.tracker),
            classifier=PuttClassifier(calibration, configs.classifier),
        )
        logger.info("vision stages built for %dx%d frames", width, height)
        return _Vision(pipeline, calibration, (width, height))

    def _context(self) -> ReportContext:
        return ReportContext(
            player_name=self._configs.player_name, player_email=self._configs.player_email,
            software_version=__version__,
            model_version=self._model_sha[:12],
            calibration_version=file_sha256(self._calibration_path())[:12],
        )  # fmt: skip

    # --- running

    def run(self) -> ServiceResult:
        """Start, loop until stopped or the input ends, stop; returns what was produced."""
        self._start()
        try:
            self._loop()
        finally:
            self._shutdown()
        return ServiceResult(
            tuple(self._putts),
            tuple(self._sessions),
            tuple(self._report_folder.written),
            self._meter.frames,
            self._stop_reason or "shutdown",
        )

    def _start(self) -> None:
        if self._delivery is not None:
            self._delivery.open()
        if self._mqtt is not None:
            self._mqtt.start()  # connects in the background: a broker that is down delays nothing
        for session in self._keeper.recover(self._clock.wall()):
            self._finished(session)
        self._feed.start()
        if self._plan.mode == "live":
            self._wait_first_frame()
        self._set_status()
        if self._plan.lifecycle is not None:
            self._plan.lifecycle.ready()
        logger.info(
            "service ready: camera %s, model %s, calibration %s",
            self._feed.camera, self._configs.detector.path.name, self._calibration_path().name,
        )  # fmt: skip

    def _wait_first_frame(self) -> None:
        deadline = self._clock.monotonic() + self._plan.first_frame_wait
        while self._stop_reason is None and self._clock.monotonic() < deadline:
            frame = self._feed.next(0.2)
            if frame is not None:
                self._on_frame(frame)
                return
        logger.warning("no camera frame yet (%s); running without one", self._feed.reason or "no frames")

    def _loop(self) -> None:
        while self._stop_reason is None:
            if self._reload_requested:
                self._reload_requested = False
                self._reload()
            if self._end_requested:
                self._end_requested = False
                self._end_by_command()
            frame = self._feed.next(0.2)
            if frame is not None:
                self._on_frame(frame)
            elif self._feed.ended:
                self._stop_reason = "end_of_input"
                break
            self._housekeeping()
            if self._plan.lifecycle is not None:
                self._plan.lifecycle.heartbeat()

    def _on_frame(self, frame: Frame) -> None:
        vision = self._vision
        if vision is None or vision.size != (frame.width, frame.height):
            if vision is not None:
                self._decide(vision.pipeline.flush(frame.timestamp))
                vision.pipeline.close()
            vision = self._vision = self._build_vision(frame.width, frame.height)
        step = vision.pipeline.process(frame)
        self._last_frame_mono = self._clock.monotonic()
        self._meter.add(step, self._last_frame_mono)
        for observer in self._plan.observers:
            observer.add(frame, step)
        self._decide(step.putts)

    def _decide(self, putts: tuple[PuttEvent, ...]) -> None:
        for putt in putts:
            split = self._keeper.add_putt(putt, self._epoch_offset())
            if split is not None:
                self._finished(split)
            self._putts.append(putt)
            session_id = self._keeper.active_session_id or ""
            logger.info("putt %s in session %s", putt.detail, session_id, extra={"SESSION_ID": session_id})
            for sink in self._event_sinks:
                sink.putt(putt, session_id)

    def _epoch_offset(self) -> float:
        if self._plan.mode == "replay":
            return self._plan.epoch_offset
        # Frame times are monotonic; the offset to UTC is taken when a session opens, after NTP had a chance.
        return self._clock.wall() - self._clock.monotonic()

    def _housekeeping(self) -> None:
        now = self._feed.now()
        vision = self._vision
        in_flight = vision is not None and vision.pipeline.putt_in_progress and self._plan.mode == "live"
        # No frames while a putt is under way (camera lost): decide it rather than hold the session open.
        starved = self._clock.monotonic() - self._last_frame_mono > self._configs.classifier.putt_timeout
        if vision is not None and in_flight and starved:
            self._decide(vision.pipeline.flush(now))
        if vision is None or not vision.pipeline.putt_in_progress:
            idle = self._keeper.tick(now)
            if idle is not None:
                self._finished(idle)
        mono = self._clock.monotonic()
        if self._undelivered and mono >= self._next_retry:
            self._next_retry = mono + RETRY_UNDELIVERED
            pending, self._undelivered = self._undelivered, []
            for session in pending:
                self._finished(session)
        if self._plan.env_file is not None and mono >= self._next_env_poll:
            self._next_env_poll = mono + ENV_FILE_POLL
            stamp = _file_stamp(self._plan.env_file)
            if stamp != self._env_stamp:
                self._env_stamp = stamp
                logger.info("env file %s changed; reloading", self._plan.env_file)
                self._reload()
        self._publish_state(mono, force=self._state_requested)
        self._state_requested = False

    def _restart_mqtt(self, configs: StageConfigs) -> None:
        if self._mqtt is not None:
            self._event_sinks.remove(self._mqtt)
            self._mqtt.close()
            self._mqtt = None
        if configs.mqtt is not None:
            self._mqtt = MqttOutlet(configs.mqtt, commands=self, version=__version__)
            self._event_sinks.append(self._mqtt)
            self._mqtt.start()

    def _end_by_command(self) -> None:
        vision = self._vision
        if vision is not None:
            self._decide(vision.pipeline.flush(self._feed.now()))
        ended = self._keeper.end("command")
        if ended is None:
            logger.info("end of session asked for, but no session is open")
            return
        self._finished(ended)

    # --- sessions leaving the loop

    def _finished(self, session: Session) -> None:
        """Hand a finished session to every session sink; its journal goes only once all have it."""
        report = build_report(session, self._context())
        try:
            for session_sink in self._session_sinks:
                session_sink.accept(session, report)
        except (PuttDaemonError, OSError) as err:
            logger.error(  # noqa: TRY400  # the reason is the message; the journal keeps the session
                "session %s kept in its journal: %s", session.session_id, err,
                extra={"SESSION_ID": session.session_id},
            )  # fmt: skip
            self._problems["report"] = f"cannot write session reports: {err}"
            self._undelivered.append(session)
            return
        self._problems.pop("report", None)
        self._keeper.discard_journal(session)
        if self._delivery is not None:
            self._delivery.queued()
        self._sessions.append(session)
        logger.info(
            "session %s handed over: %d putts, %d makes, ended by %s",
            session.session_id, len(session.putts), session.makes, session.end_reason,
            extra={"SESSION_ID": session.session_id},
        )  # fmt: skip
        for event_sink in self._event_sinks:
            event_sink.session(session, report)

    # --- reload

    def _reload(self) -> None:
        loader = self._plan.reload_settings
        if loader is None:
            return
        lifecycle = self._plan.lifecycle
        if lifecycle is not None:
            lifecycle.reloading()
        try:
            self._apply(loader())
        except ConfigError as err:
            for line in err.lines:
                logger.error("reload refused, keeping the running settings: %s", line)  # noqa: TRY400
            self._problems["config"] = "config rejected: " + "; ".join(err.lines)
        except PuttDaemonError as err:
            logger.error("reload refused, keeping the running settings: %s", err)  # noqa: TRY400
            self._problems["config"] = f"config rejected: {err}"
        finally:
            if lifecycle is not None:
                lifecycle.reloaded()

    def _apply(self, settings: Settings) -> None:
        new = stage_configs(settings, self._plan.state_dir)
        calibration = load_calibration(self._plan.calibration_file or new.calibration_file)
        if new.detector != self._configs.detector:
            BallDetector.open(new.detector).close()
        changed = changed_stages(self._configs, new)
        if calibration != self._calibration:
            changed.append("calibration")
        self._problems.pop("config", None)
        if not changed:
            logger.info("reload: settings unchanged")
            return
        before = set(effective_lines(self._settings))
        names = sorted({line.split("=", 1)[0] for line in set(effective_lines(settings)) ^ before})
        what = ", ".join(names) or "calibration"
        logger.info("reload: applying changes to %s (%s)", ", ".join(changed), what)
        old, self._configs, self._settings = self._configs, new, settings
        self._calibration = calibration
        self._identify()
        logging.getLogger().setLevel(new.log_level)
        if self._delivery is not None:
            self._delivery.reconfigure(new.upload)
        if new.mqtt != old.mqtt and self._plan.mqtt:
            self._restart_mqtt(new)
        if new.spool != old.spool:
            logger.warning("reload: PUTT_SPOOL_* changes take effect at the next start")
        if new.state_dir != old.state_dir:
            logger.warning("reload: PUTT_STATE_DIR takes effect at the next start")
        self._keeper.reconfigure(replace(new.sessions, journal_dir=old.sessions.journal_dir))
        if new.camera != old.camera and self._plan.mode == "live":
            self._feed.stop()
            self._feed = self._make_feed()
            self._feed.start()
        vision_keys = {"gate", "detector", "tracker", "classifier", "calibration", "calibration_file"}
        if self._vision is not None and vision_keys & set(changed):
            self._decide(self._vision.pipeline.flush(self._feed.now()))
            self._vision.pipeline.close()
            self._vision = None  # rebuilt on the next frame, at its size

    # --- state

    def _state(self, mono: float) -> ServiceState:
        camera = self._feed.camera
        problems = dict(self._problems)
        if camera != "ok":
            problems["camera"] = f"camera {camera}: {self._feed.reason}"
        progress = None
        session_id = self._keeper.active_session_id
        if session_id is not None:
            putts = self._keeper.active_putts
            streak = 0
            for putt in reversed(putts):
                if not putt.is_make:
                    break
                streak += 1
            progress = SessionProgress(session_id, len(putts), sum(p.is_make for p in putts), streak)
        return ServiceState(
            status=self._status_now(problems, progress),
            camera=camera,
            fps=round(self._meter.fps(mono), 1),
            inference_ms=round(self._meter.inference_ms(), 2),
            gate_skipped=round(self._meter.gate_skipped(), 3),
            session=progress,
            putts=len(self._putts),
            sessions=len(self._sessions),
            model=self._configs.detector.path.name,
            model_sha256=self._model_sha[:12],
            calibration=self._calibration_path().name,
            config_hash=self._config_hash,
            version=__version__,
            device=self._configs.device_name,
            pid=os.getpid(),
            started_at=self._started_wall,
            updated_at=self._clock.wall(),
            uptime=round(mono - self._started_mono, 1),
            problems=tuple(problems.values()),
            **self._delivery_fields(),
        )

    def _delivery_fields(self) -> dict[str, Any]:
        if self._delivery is None:
            return {}
        state = self._delivery.state()
        return {
            "spool_pending": state.pending, "spool_dead": state.dead, "spool_bytes": state.bytes,
            "upload": state.upload, "last_upload_at": state.last_upload_at,
            "last_upload_result": state.last_upload_result,
        }  # fmt: skip

    def _status_now(self, problems: dict[str, str], progress: SessionProgress | None) -> ServiceStatus:
        if self._status in ("starting", "stopping"):
            return self._status
        if problems:
            return "degraded"
        return "in_session" if progress is not None else "idle"

    def _set_status(self, status: ServiceStatus = "idle") -> None:
        self._status = status
        self._publish_state(self._clock.monotonic(), force=True)

    def _publish_state(self, mono: float, *, force: bool = False) -> None:
        if not self._event_sinks:
            return
        # Published on a change of what an operator looks at, and every status interval for the meters. The
        # key is cheap on purpose: it is looked at on every turn of the loop.
        key = (
            self._status, self._feed.camera, self._keeper.active_session_id, self._keeper.active_count,
            len(self._putts), len(self._sessions), tuple(self._problems.values()),
        )  # fmt: skip
        if not force and key == self._last_state and mono < self._next_state:
            return
        self._last_state = key
        self._next_state = mono + self._configs.status_interval
        state = self._state(mono)
        for sink in self._event_sinks:
            sink.state(state)

    def _identify(self) -> None:
        """Hash the model and the effective configuration once, at start and on each reload."""
        self._model_sha = file_sha256(self._configs.detector.path)
        text = repr(self._configs) + repr(sorted(self._calibration.polygons.items()))
        self._config_hash = hashlib.sha256(text.encode()).hexdigest()[:12]

    # --- stopping

    def _shutdown(self) -> None:
        reason: EndReason = self._stop_reason or "shutdown"
        self._stop_reason = reason
        if self._plan.lifecycle is not None:
            self._plan.lifecycle.stopping()
        self._set_status("stopping")
        self._feed.stop()
        if self._vision is not None:
            self._decide(self._vision.pipeline.flush(self._feed.now()))
        last = self._keeper.end(reason)
        if last is not None:
            self._finished(last)
        if self._vision is not None:
            self._vision.pipeline.close()
        for observer in reversed(self._plan.observers):
            observer.close()
        self._publish_state(self._clock.monotonic(), force=True)
        for event_sink in reversed(self._event_sinks):
            event_sink.close()
        if self._delivery is not None:
            self._delivery.close()  # the uploader stops before the spool it reads is released
        for session_sink in reversed(self._session_sinks[1:] if self._delivery else self._session_sinks):
            session_sink.close()
        logger.info("service stopped (%s)", reason)


def install_signal_handlers(service: Service) -> None:
    """SIGTERM and SIGINT stop the service cleanly; SIGHUP reloads its settings."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signal.Signals(signum).name)
        service.request_stop("shutdown")

    def reload(_signum: int, _frame: FrameType | None) -> None:
        service.request_reload()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)


def _file_stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns
