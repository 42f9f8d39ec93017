"""The daemon's exceptions.

PuttDaemonError                  exit code of the CLI
├── ConfigError          78  bad settings or env file: the CLI prints every line
├── CalibrationError     78  a calibration file that cannot be used: every problem by region name
├── ModelError           78  a model file that is missing, corrupt, or has no ball class
├── CameraError          66  a frame source that cannot be opened or stopped delivering
├── InputMissingError    66  an input file the user named does not exist
├── InputDataError       65  an input file exists but its data is unusable (damaged video, not weights)
├── OutputError          73  an output file or folder cannot be created
├── SpoolError            1  the on-disk queue cannot be written
└── UploadError           1  the web API refused or could not be reached
    └── PermanentUploadError   a refusal that retrying will not fix (400, 401, 403)
"""

from __future__ import annotations

from collections.abc import Sequence


class PuttDaemonError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(PuttDaemonError):
    """Settings that cannot be used; `lines` names each bad field."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = tuple(lines)
        super().__init__("\n".join(self.lines))


class CalibrationError(PuttDaemonError):
    """A calibration file that cannot be used; `problems` names each bad region."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class ModelError(PuttDaemonError):
    """A detector model that cannot be used."""


class CameraError(PuttDaemonError):
    """A frame source that cannot be opened or stopped delivering frames."""


class InputMissingError(PuttDaemonError):
    """An input file the user named does not exist."""


class InputDataError(PuttDaemonError):
    """An input file whose data cannot be used (what could be read may still have been reported)."""


class OutputError(PuttDaemonError):
    """An output file or folder that cannot be created or written."""


class SpoolError(PuttDaemonError):
    """The on-disk queue cannot be written."""


class UploadError(PuttDaemonError):
    """An upload that failed; it may succeed later."""


class PermanentUploadError(UploadError):
    """An upload the server refused in a way that retrying will not fix."""
