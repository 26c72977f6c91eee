"""Option defaults from a file and the environment (``afetch.toml``, ``AFETCH_*``).

The command line beats the environment, which beats the file, which beats
afetch's own defaults: click's own order for ``auto_envvar_prefix`` and a
``default_map``, which is what this module builds. Keys are option names
(``per-host`` or ``per_host``); a value goes through the same parsing as
on the command line (``timeout = "250ms"``, ``expect-status = "2xx"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

ENV_PREFIX = "AFETCH"


class SettingsError(click.UsageError):
    """A config file that cannot be read, or a key that is not an option."""


def config_path(argv: Sequence[str]) -> Path | None:
    """``--config FILE``, else ``afetch.toml``, else ``pyproject.toml`` with ``[tool.afetch]``."""
    if "--no-config" in argv:
        return None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    for name in ("afetch.toml", "pyproject.toml"):
        path = Path(name)
        if path.is_file() and (name == "afetch.toml" or _has_tool_section(path)):
            return path
    return None


def default_map(command: click.Command, path: Path | None) -> dict[str, Any]:
    """The file's settings as click's ``default_map`` (values shaped as click expects)."""
    if path is None:
        return {}
    import tomllib  # 3 ms (datetime and more): paid only when there is a file to read

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"--config {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("afetch", {})
    options = {
        param.name: param
        for param in command.params
        if isinstance(param, click.Option) and param.name not in _NOT_SETTINGS
    }
    defaults: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        param = options.get(name) or _by_flag(options, key)
        if param is None:
            raise SettingsError(f"{path}: {key!r} is not an afetch option")
        assert param.name is not None
        defaults[param.name] = _shaped(param, value)
    return defaults


def show(ctx: click.Context, path: Path | None) -> str:
    """``--show-config``: every option's effective value and where it came from."""
    sources = {
        click.core.ParameterSource.COMMANDLINE: "command line",
        click.core.ParameterSource.ENVIRONMENT: "environment",
        click.core.ParameterSource.DEFAULT_MAP: str(path) if path else "config file",
        click.core.ParameterSource.DEFAULT: "default",
    }
    lines = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in _NOT_SETTINGS:
            continue
        assert param.name is not None
        source = ctx.get_parameter_source(param.name)
        value = ctx.params.get(param.name)
        where = sources.get(source, "default") if source is not None else "default"
        if source is click.core.ParameterSource.ENVIRONMENT:
            where += f" ({ENV_PREFIX}_{param.name.upper()})"
        flag = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
        lines.append(f"{flag} = {_text(value)}  # {where}")
    return "\n".join(lines)


#: Options that are actions or about config itself, not settings.
_NOT_SETTINGS = frozenset({"config_file", "no_config", "show_config", "help", "version", "schema"})


def _has_tool_section(path: Path) -> bool:
    import tomllib

    try:
        return "afetch" in tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


def _by_flag(options: dict[str, click.Option], key: str) -> click.Option | None:
    flag = f"--{key}"
    return next((p for p in options.values() if flag in p.opts or flag in p.secondary_opts), None)


def _shaped(param: click.Option, value: Any) -> Any:
    """TOML values as the command line would give them: text for parsed options."""
    if param.is_flag and isinstance(value, bool):
        return value
    if param.multiple:
        items = value if isinstance(value, list) else [value]
        return tuple(str(item) for item in items)
    return str(value) if not isinstance(value, str) else value


def _text(value: Any) -> str:
    value = getattr(value, "text", None) or getattr(value, "pattern", None) or value
    if isinstance(value, tuple):
        items = (": ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in value)
        return "[" + ", ".join(repr(item) for item in items) + "]"
    return repr(value) if isinstance(value, str) else str(value)
