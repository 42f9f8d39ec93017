"""Redaction: credentials never reach a log line, an error message, the state file or `check-config`."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:user|username|pass|password|passwd|pwd|token|key|auth|secret)=)[^&#\s]*", re.IGNORECASE
)


def mask_url(source: str) -> str:
    """SOURCE, or any text naming it, with URL credentials replaced by `***`."""
    masked = _USERINFO.sub(r"\g<scheme>***@", source)
    return _SECRET_QUERY.sub(r"\g<key>***", masked)
