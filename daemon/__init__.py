"""putt-daemon: counts putts on a camera-watched putting mat and reports sessions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("putt-daemon")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
