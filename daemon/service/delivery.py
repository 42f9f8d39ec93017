"""The service's delivery side: the spool (a session sink) and the uploader that empties it in the background.

Built only by the `run` service. The spool is opened first and closed last, holding its lock all the while;
the uploader starts once the spool is open, is woken when a session is queued, follows a reload of the upload
settings, and stops before the spool closes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from daemon.delivery.spool import Spool, SpoolConfig
from daemon.delivery.uploader import UploadConfig, Uploader

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """What the status outlets show of the queue and the uploads."""

    pending: int
    dead: int
    bytes: int
    full: bool
    upload: str
    last_upload_at: float | None
    last_upload_result: str


class Delivery:
    """The spool and its uploader, as one unit the service starts and stops."""

    def __init__(self, spool: SpoolConfig, upload: UploadConfig | None) -> None:
        self.spool = Spool(spool)
        self._upload_config = upload
        self._uploader: Uploader | None = None

    def open(self) -> None:
        """Lock and repair the spool, then start uploading what waits in it."""
        for line in self.spool.open(exclusive=True):
            logger.warning("spool: %s", line)
        usage = self.spool.usage()
        logger.info("spool %s: %d pending, %d dead", self.spool.config.root, usage.pending, usage.dead)
        self._start_uploader()

    def _start_uploader(self) -> None:
        if self._upload_config is None:
            logger.info("no PUTT_UPLOAD_URL: sessions wait in the spool")
            return
        self._uploader = Uploader(self._upload_config, self.spool)
        self._uploader.start()

    def queued(self) -> None:
        """A session was just accepted by the spool: upload it now rather than at the next poll."""
        if self._uploader is not None:
            self._uploader.wake()

    def reconfigure(self, upload: UploadConfig | None) -> None:
        """New upload settings (a reload): a new token resumes a queue paused on 401/403 at once."""
        if upload == self._upload_config:
            return
        self._upload_config = upload
        if self._uploader is not None and upload is not None:
            self._uploader.reconfigure(upload)
            return
        if self._uploader is not None:
            self._uploader.stop()
            self._uploader = None
        self._start_uploader()

    def state(self) -> DeliveryState:
        """The queue's counters and the uploader's last result."""
        usage = self.spool.usage()
        if self._uploader is None:
            return DeliveryState(usage.pending, usage.dead, usage.bytes, usage.full, "disabled", None, "")
        status = self._uploader.status
        return DeliveryState(
            usage.pending, usage.dead, usage.bytes, usage.full, status.state, status.last_time,
            status.last_result,
        )  # fmt: skip

    def close(self) -> None:
        """Stop uploading, then release the spool."""
        if self._uploader is not None:
            self._uploader.stop()
            self._uploader = None
        self.spool.close()
