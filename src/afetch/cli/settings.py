"""Option defaults from a file and the environment (``afetch.toml``, ``AFETCH_*``).

The command line beats the environment, which beats the file, which beats
afetch's own defaults: click's own order for ``auto_envvar_prefix`` and a
``default_map``, which is what this module builds. Keys are option names
(``per-host`` or ``per_host``); a value goes through the same parsing as
on the command line (``timeout = "250ms"``, ``expect-status = "2xx"``).

An option's variable is ``AFETCH_`` and its long name (``--body`` →
``AFETCH_BODY``, ``--header`` → ``AFETCH_HEADER``); a repeatable option's
variable holds one value a line, so a header value may have spaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

ENV_PREFIX = "AFETCH"


class SettingsError(click.UsageError):
    """A config file that cannot be read, or a key that is not an option."""


class SettingOption(click.Option):
    """An option whose variable is ``AFETCH_`` + its long name, named in its errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_from_autoenv = False  # click's name comes from the parameter's, not the flag
        if self.envvar is None and self.name not in _NOT_SETTINGS:
            self.envvar = env_name(self)

    def value_from_envvar(self, ctx: click.Context) -> Any:
        if not self.multiple:
            return super().value_from_envvar(ctx)
        value = self.resolve_envvar_value(ctx)
        if value is None:
            return None
        return tuple(line.strip() for line in value.splitlines() if line.strip())

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        try:
            return super().process_value(ctx, value)
        except click.BadParameter as exc:
            if self.name and ctx.get_parameter_source(self.name) is ParameterSource.ENVIRONMENT:
                said = f"{exc.message} (from the environment: {self.envvar})"
                raise click.BadParameter(said, ctx, self) from exc
            raise


def env_name(option: click.Option) -> str:
    """``AFETCH_`` and the option's long name: ``--per-host`` → ``AFETCH_PER_HOST``."""
    flag = next((opt for opt in option.opts if opt.startswith("--")), option.opts[0])
    return f"{ENV_PREFIX}_{flag.lstrip('-').replace('-', '_').upper()}"


#: Variables afetch reads that are not options.
_OTHER_VARIABLES: frozenset[str] = frozenset()


def unknown_variables(command: click.Command, environ: Mapping[str, str]) -> list[str]:
    """``AFETCH_*`` names in the environment that no option reads (a typo, most likely)."""
    known = {p.envvar for p in command.params if isinstance(p, click.Option)} | _OTHER_VARIABLES
    prefix = f"{ENV_PREFIX}_"
    return sorted(name for name in environ if name.startswith(prefix) and name not in known)


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
        param = _by_flag(options, key) or options.get(name)  # the flag first: --headers
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
    mask = _masker(ctx.params)
    lines = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in _NOT_SETTINGS:
            continue
        assert param.name is not None
        source = ctx.get_parameter_source(param.name)
        value = ctx.params.get(param.name)
        where = sources.get(source, "default") if source is not None else "default"
        if source is click.core.ParameterSource.ENVIRONMENT:
            where += f" ({param.envvar})"
        flag = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
        key = flag.lstrip("-")
        if value is None or value == ():
            lines.append(f"# {key}  # not set ({where})")
        else:
            lines.append(f"{key} = {_toml(mask(param.name, value))}  # {where}")
    return "\n".join(lines)


def _masker(params: dict[str, Any]) -> Callable[[str, Any], Any]:
    """``--show-config`` masks what records mask: -u's password, credential headers,
    cookies, proxy passwords and --secret values (unless --no-redact)."""
    from afetch.redact import MASK, Redaction

    if params.get("no_redact"):
        return lambda name, value: value
    redaction = Redaction(
        names=frozenset(n.lower() for n in params.get("redact") or ()),
        secrets=tuple(params.get("secret") or ()),
    )

    def mask(name: str, value: Any) -> Any:
        if name == "secret":
            return tuple(MASK for _ in value)
        if name == "oauth2_bearer":
            return MASK
        if name == "user" and isinstance(value, str):
            user, colon, _ = value.partition(":")
            return f"{user}:{MASK}" if colon else value
        if name == "cookie":
            return MASK
        if name == "headers":
            return tuple(
                (header, None if header_value is None else redaction.header(header, header_value))
                for header, header_value in value
            )
        if isinstance(value, str):
            return redaction.text(redaction.url(value))
        return value

    return mask


#: Options that are actions or about config itself, not settings.
_NOT_SETTINGS = frozenset(
    {"config_file", "no_config", "show_config", "help", "version", "schema", "curl_habits"}
)


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


def _toml(value: Any) -> str:
    """A value as TOML, in the form the option reads it back (``--show-config`` pastes)."""
    value = getattr(value, "text", None) or getattr(value, "pattern", None) or value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        items = (": ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in value)
        return "[" + ", ".join(_toml_string(item) for item in items) + "]"
    return _toml_string(str(value))


def _toml_string(text: str) -> str:
    import json  # a JSON string is a TOML basic string for every character afetch prints

    return json.dumps(text, ensure_ascii=False)
