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
from dataclasses import dataclass, replace
from pathlib import Path

from daemon import __version__
from daemon.configuration import effective_lines
from daemon.delivery.reports import ReportContext, ReportFolder, build_report
from daemon.delivery.sessions import SessionKeeper
from daemon.errors import ConfigError, PuttDaemonError
from daemon.models import EndReason, Frame, PuttEvent, ServiceState, ServiceStatus, Session
from daemon.outlets.mqtt import MqttOutlet
from daemon.outlets.mqtt_commands import CommandError
from daemon.service.delivery import Delivery
from daemon.service.model_update import ModelUpdater, PreparedModel, UpdateStatus
from daemon.service.plan import ServicePlan, ServiceResult
from daemon.service.snapshot import frame_jpeg, write_snapshot
from daemon.service.state import delivery_fields, overall_status, session_progress
from daemon.service.wiring import StageConfigs, camera_openers, changed_stages, replay_source, stage_configs
from daemon.settings import Settings
from daemon.sinks import EventSink, SessionSink
from daemon.vision.calibration import Calibration, load_calibration
from daemon.vision.camera import source_kind
from daemon.vision.classifier import PuttClassifier
from daemon.vision.detector import BallDetector, file_sha256
from daemon.vision.drift_watch import DriftFollow
from daemon.vision.feeds import FrameFeed, LiveFeed, ReplayFeed
from daemon.vision.meter import LoopMeter
from daemon.vision.motion_gate import MotionGate
from daemon.vision.pipeline import PipelineStep, VisionPipeline
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
    crop: tuple[int, int, int, int]
    gate: MotionGate | None  # kept, with the tracker and classifier, when a model update swaps the detector
    tracker: BallTracker
    classifier: PuttClassifier


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
        self._start_requested = False
        self._state_requested = False
        self._snapshot_requested = False
        self._newest_frame: Frame | None = None
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
        # Every putt and session, for the result a replay prints. A live service runs for months: it counts
        # them and keeps none (a putt holds its whole path).
        self._keep_results = plan.mode == "replay"
        self._putts: list[PuttEvent] = []
        self._sessions: list[Session] = []
        self._putt_count = self._session_count = 0
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
        self._updater: ModelUpdater | None = None
        self._drift = self._make_drift()

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

    def start_session(self) -> None:
        """Open a session between two frames, as an operator asked; refused while one is open."""
        open_id = self._keeper.active_session_id
        if open_id is not None:
            raise CommandError(f"session {open_id} is already open")
        self._start_requested = True

    def publish_state_now(self) -> None:
        """Publish the state at the next turn of the loop, whether or not it changed."""
        self._state_requested = True

    def request_snapshot(self) -> None:
        """Write the newest frame to `snapshot.jpg` in the state folder between two frames."""
        self._snapshot_requested = True

    def snapshot_jpeg(self, draw: bool) -> bytes | None:  # noqa: FBT001  # the MQTT commands' protocol
        """The newest frame as JPEG, with the calibrated regions if DRAW; None before the first frame."""
        frame, vision = self._newest_frame, self._vision
        if frame is None:
            return None
        drawn = draw and vision is not None and vision.size == (frame.width, frame.height)
        return frame_jpeg(frame, vision.calibration if drawn and vision is not None else None)

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

    def _make_drift(self) -> DriftFollow:
        live = self._plan.mode == "live"
        return DriftFollow(self._configs.drift, self._calibration_path(), background=live)

    def _build_vision(self, width: int, height: int) -> _Vision:
        calibration = self._drift.counting(self._calibration.scaled(width, height))
        configs = self._configs
        crop = calibration.bounds()
        detector = BallDetector.open(replace(configs.detector, crop=crop), (width, height))
        gate = None if configs.gate is None else MotionGate(replace(configs.gate, crop=crop))
        tracker = BallTracker(configs.tracker)
        classifier = PuttClassifier(calibration, configs.classifier)
        pipeline = VisionPipeline(detector=detector, gate=gate, tracker=tracker, classifier=classifier)
        logger.info("vision stages built for %dx%d frames", width, height)
        return _Vision(pipeline, calibration, (width, height), crop, gate, tracker, classifier)

    def _context(self) -> ReportContext:
        return ReportContext(
            player_name=self._configs.player_name, player_email=self._configs.player_email,
            software_version=__version__,
            model_version=self._model_sha[:12],
            calibration_version=file_sha256(self._calibration_path())[:12],
            under_drift=self._drift.under_drift,
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
            self._drift.describe(),
        )

    def _start(self) -> None:
        if self._delivery is not None:
            self._delivery.open()
        if self._mqtt is not None:
            self._mqtt.start()  # connects in the background: a broker that is down delays nothing
        for session in self._keeper.recover(self._clock.wall()):
            self._finished(session)
        self._start_model_update()
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
            if self._start_requested:
                self._start_requested = False
                self._start_by_command()
            if self._snapshot_requested:
                self._snapshot_requested = False
                self._write_snapshot()
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
        prepared = self._updater.take() if self._updater is not None else None
        if prepared is not None:
            self._swap_model(prepared, frame.index)
        vision = self._vision
        if vision is None or vision.size != (frame.width, frame.height):
            if vision is not None:
                self._decide(vision.pipeline.flush(frame.timestamp))
                vision.pipeline.close()
            vision = self._vision = self._build_vision(frame.width, frame.height)
        step = vision.pipeline.process(frame)
        self._newest_frame = frame
        self._last_frame_mono = self._clock.monotonic()
        self._meter.add(step, self._last_frame_mono)
        for observer in self._plan.observers:
            observer.add(frame, step)
        self._decide(step.putts)
        self._watch_drift(frame, step, vision)

    def _watch_drift(self, frame: Frame, step: PipelineStep, vision: _Vision) -> None:
        """Check for a moved camera while the scene is still; count on with regions that follow the rig."""
        still = not vision.pipeline.putt_in_progress and (vision.gate is None or not step.detected)
        if not self._drift.offer(frame, self._calibration.scaled(frame.width, frame.height), still=still):
            return
        problem = self._drift.problem
        if problem is None:
            self._problems.pop("calibration_drift", None)
        else:
            self._problems["calibration_drift"] = problem
        if self._drift.counting(self._calibration.scaled(frame.width, frame.height)) != vision.calibration:
            self._decide(vision.pipeline.flush(frame.timestamp))
            vision.pipeline.close()
            self._vision = None  # rebuilt on the next frame with the regions moved

    def _decide(self, putts: tuple[PuttEvent, ...]) -> None:
        for putt in putts:
            split = self._keeper.add_putt(putt, self._epoch_offset())
            if split is not None:
                self._finished(split)
            self._putt_count += 1
            if self._keep_results:
                self._putts.append(putt)
            self._drift.note(putt)
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

    def _start_by_command(self) -> None:
        if self._keeper.start(self._feed.now(), self._epoch_offset()) is None:
            logger.info("start of a session asked for, but one is open already")

    def _end_by_command(self) -> None:
        vision = self._vision
        if vision is not None:
            self._decide(vision.pipeline.flush(self._feed.now()))
        ended = self._keeper.end("command")
        if ended is None:
            logger.info("end of session asked for, but no session is open")
            return
        self._finished(ended)

    def _write_snapshot(self) -> None:
        picture = self.snapshot_jpeg(draw=False)
        if picture is None:
            logger.warning("snapshot asked for, but no camera frame has come yet")
            return
        try:
            path = write_snapshot(self._configs.state_dir, picture)
        except OSError as err:
            logger.error("cannot write the snapshot: %s", err)  # noqa: TRY400  # the reason is the message
            return
        logger.info("snapshot written to %s", path)

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
        self._session_count += 1
        if self._keep_results:
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
        if {"calibration", "calibration_file", "drift"} & set(changed):
            self._drift.close()  # a new calibration comes with its own reference, or none
            self._drift = self._make_drift()
            self._problems.pop("calibration_drift", None)
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
        if new.model_update != old.model_update:
            self._stop_model_update()
            self._start_model_update()
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
        update = self._update_status()
        if update.state == "rejected":
            problems["model_update"] = f"model update rejected: {update.detail}"
        progress = session_progress(self._keeper.active_session_id, self._keeper.active_putts)
        return ServiceState(
            status=overall_status(self._status, problems, progress),
            camera=camera,
            camera_outages=self._feed.outages,
            fps=round(self._meter.fps(mono), 1),
            inference_ms=round(self._meter.inference_ms(), 2),
            gate_skipped=round(self._meter.gate_skipped(), 3),
            session=progress,
            putts=self._putt_count,
            sessions=self._session_count,
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
            model_update=update.state,
            model_update_error=update.detail,
            **delivery_fields(self._delivery),
            **self._drift.state_fields(),
        )

    def _set_status(self, status: ServiceStatus = "idle") -> None:
        self._status = status
        self._publish_state(self._clock.monotonic(), force=True)

    def _publish_state(self, mono: float, *, force: bool = False) -> None:
        if not self._event_sinks:
            return
        # Published on a change of what an operator looks at, and every status interval for the meters. The
        # key is cheap on purpose: it is looked at on every turn of the loop.
        key = (
            self._status, self._feed.camera, self._feed.outages, self._keeper.active_session_id,
            self._keeper.active_count,
            self._putt_count, self._session_count, tuple(self._problems.values()), self._update_status(),
        )  # fmt: skip
        if not force and key == self._last_state and mono < self._next_state:
            return
        self._last_state = key
        self._next_state = mono + self._configs.status_interval
        state = self._state(mono)
        for sink in self._event_sinks:
            sink.state(state)

    def _identify(self, model_sha: str = "") -> None:
        """Hash the model (unless MODEL_SHA gives it) and the effective configuration."""
        self._model_sha = model_sha or file_sha256(self._configs.detector.path)
        text = repr(self._configs) + repr(sorted(self._calibration.polygons.items()))
        self._config_hash = hashlib.sha256(text.encode()).hexdigest()[:12]

    # --- model updates

    def _start_model_update(self) -> None:
        """Fetch the model PUTT_MODEL_URL names, live only: a replay keeps the model it started with."""
        update = self._configs.model_update
        if update is None or self._plan.mode != "live" or self._configs.detector.path == update.target:
            return
        self._updater = ModelUpdater(update, self._configs.detector)
        self._updater.start()

    def _stop_model_update(self) -> None:
        if self._updater is not None:
            self._updater.stop()
            self._updater = None

    def _update_status(self) -> UpdateStatus:
        update = self._configs.model_update
        if update is not None and self._configs.detector.path == update.target:
            return UpdateStatus("installed")
        if self._updater is not None:
            return self._updater.status
        return UpdateStatus("off")

    def _swap_model(self, prepared: PreparedModel, frame_index: int) -> None:
        """Run the accepted model from this frame on; the tracker and the putt under way carry on."""
        detector = replace(self._configs.detector, path=prepared.path, sha256=prepared.sha256)
        self._configs = replace(self._configs, detector=detector)
        self._identify(prepared.sha256)
        vision = self._vision
        if vision is None:
            prepared.detector.close()  # the next frame builds the stages, from the file now named
        else:
            # The sessions ONNX Runtime opened on the updater's thread (the model's and the verifier's),
            # given this frame size's crop.
            opened = prepared.detector
            crop = replace(detector, crop=vision.crop)
            swapped = BallDetector(crop, opened.session, opened.info, opened.verifier)
            old = vision.pipeline
            vision.pipeline = VisionPipeline(
                detector=swapped, gate=vision.gate, tracker=vision.tracker, classifier=vision.classifier
            )
            old.close()
        logger.info("model update: %s in use from frame %d", prepared.path.name, frame_index)
        self._publish_state(self._clock.monotonic(), force=True)

    # --- stopping

    def _shutdown(self) -> None:
        reason: EndReason = self._stop_reason or "shutdown"
        self._stop_reason = reason
        if self._plan.lifecycle is not None:
            self._plan.lifecycle.stopping()
        self._set_status("stopping")
        self._stop_model_update()
        self._feed.stop()
        self._drift.close()
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


def _file_stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns
