"""Loading settings for the CLI: one report naming every bad field, masked secrets, the env-file template.

`load_settings` turns pydantic's validation errors into `ConfigError`, whose lines read
`PUTT_<FIELD>: <why> (got <value>)`, so the CLI can print them and exit 78 without a traceback.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from daemon.errors import ConfigError
from daemon.redact import mask_url
from daemon.settings import DEFAULT_ENV_FILE, ENV_PREFIX, Settings

MASK = "**********"


@dataclass(frozen=True, slots=True)
class SettingField:
    """One setting as the environment names it."""

    env_name: str
    group: str
    name: str
    info: FieldInfo

    @property
    def secret(self) -> bool:
        return self.info.annotation is SecretStr


@dataclass(frozen=True, slots=True)
class LoadedSettings:
    """Valid settings, plus variables that looked like settings but are not."""

    settings: Settings
    env_file: Path | None
    unknown: tuple[str, ...]


def setting_fields() -> Iterator[SettingField]:
    """Every leaf setting in declaration order."""
    for group, group_info in Settings.model_fields.items():
        group_model = group_info.annotation
        if not (isinstance(group_model, type) and issubclass(group_model, BaseModel)):
            raise TypeError(f"settings group {group} is not a model")
        for name, info in group_model.model_fields.items():
            yield SettingField(f"{ENV_PREFIX}{group}_{name}".upper(), group, name, info)


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error location points at."""
    return (ENV_PREFIX + "_".join(str(part) for part in loc)).upper()


def _show(value: object, *, secret: bool) -> str:
    if secret:
        return MASK
    if isinstance(value, str):
        return repr(mask_url(value))
    return mask_url(str(value))


def _error_lines(err: ValidationError) -> list[str]:
    secrets = {field.env_name for field in setting_fields() if field.secret}
    lines = []
    for item in err.errors(include_url=False):
        name = env_name(item["loc"])
        why = item["msg"].removeprefix("Value error, ")
        if why.startswith(ENV_PREFIX):
            # A rule across fields names the variable to set itself.
            name, _, why = why.partition(": ")
        given = item.get("input")
        if isinstance(given, Mapping) or given is None:
            lines.append(f"{name}: {why}")
        else:
            lines.append(f"{name}: {why} (got {_show(given, secret=name in secrets)})")
    return lines


def _unknown_names(names: set[str]) -> tuple[str, ...]:
    known = {field.env_name for field in setting_fields()}
    groups = {f"{ENV_PREFIX}{group}".upper() for group in Settings.model_fields}
    odd = sorted(name for name in names if name not in known and name not in groups)
    return tuple(odd)


def typo_hint(name: str) -> str:
    """A line saying that NAME is not a setting, with the closest real one."""
    known = [field.env_name for field in setting_fields()]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name}: not a setting, probably a typo{hint}"


def _resolve_env_file(env_file: Path | None) -> Path | None:
    if env_file is None:
        return DEFAULT_ENV_FILE if DEFAULT_ENV_FILE.is_file() else None
    if not env_file.is_file():
        raise ConfigError([f"--env-file: no such file (got {str(env_file)!r})"])
    return env_file


def _candidate_names(env_file: Path | None) -> set[str]:
    from_file: dict[str, str | None] = dict(dotenv_values(env_file)) if env_file else {}
    return {key.upper() for key in (*os.environ, *from_file) if key.upper().startswith(ENV_PREFIX)}


def unknown_names(env_file: Path | None = None) -> tuple[str, ...]:
    """`PUTT_*` names in the environment or the env file that are not settings (likely typos)."""
    try:
        resolved = _resolve_env_file(env_file)
    except ConfigError:
        return ()
    return _unknown_names(_candidate_names(resolved))


def load_settings(env_file: Path | None = None) -> LoadedSettings:
    """Read settings from the environment and the env file; raise ConfigError naming every bad field.

    With no env_file the default file is read when it exists; a file named explicitly must exist.
    """
    env_file = _resolve_env_file(env_file)
    names = _candidate_names(env_file)
    try:
        settings = Settings(_env_file=env_file)
    except ValidationError as err:
        hints = [typo_hint(name) for name in _unknown_names(names)]
        raise ConfigError(_error_lines(err) + hints) from err
    return LoadedSettings(settings, env_file, _unknown_names(names))


def effective_lines(settings: Settings) -> list[str]:
    """`PUTT_X=value` for every setting, secrets masked."""
    lines = []
    for field in setting_fields():
        value: Any = getattr(getattr(settings, field.group), field.name)
        if isinstance(value, SecretStr):
            shown = MASK if value.get_secret_value() else ""
        elif value is None:
            shown = ""
        elif isinstance(value, bool):
            shown = str(value).lower()
        else:
            shown = mask_url(str(value))
        lines.append(f"{field.env_name}={shown}")
    return lines


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "(computed at start-up)"
    default = info.default
    if default is PydanticUndefined or default is None:
        return ""
    if isinstance(default, SecretStr):
        return ""
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def env_example() -> str:
    """The text of config/putt-daemon.env.example, generated from the field descriptions."""
    out = [
        "# putt-daemon settings. Copy to /etc/putt-daemon/putt-daemon.env and uncomment what you change.",
        "# Real environment variables override this file. Generated by `putt-daemon check-config --example`.",
    ]
    current = ""
    for field in setting_fields():
        if field.group != current:
            current = field.group
            doc = (Settings.model_fields[current].annotation.__doc__ or "").strip()
            out += ["", f"# --- {current}: {doc}"]
        default = _default_text(field.info)
        out.append(f"# {field.info.description}")
        if field.info.default_factory is not None:
            out.append(f"# default: {default}")
            out.append(f"#{field.env_name}=")
        else:
            out.append(f"#{field.env_name}={default}")
    return "\n".join(out) + "\n"
