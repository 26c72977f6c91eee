"""Option defaults from afetch.toml, [tool.afetch] and AFETCH_* variables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import AFETCH


def _afetch(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AFETCH, *args], cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _settings(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {
        line.split(" = ")[0]: line.split(" = ", 1)[1]
        for line in done.stdout.splitlines()
        if not line.startswith("#")
    }


def test_command_line_beats_environment_beats_file(tmp_path: Path) -> None:
    """The command line beats AFETCH_* variables, which beat afetch.toml."""
    (tmp_path / "afetch.toml").write_text(
        'concurrency = 7\nretries = 1\ntimeout = "3s"\nexpect-status = "2xx"\n'
        'header = ["X-A: b"]\nordered = true\n'
    )
    done = _afetch(tmp_path, "--show-config", "-c", "11", env={"AFETCH_RETRIES": "5"})
    assert done.returncode == 0, done.stderr
    shown = _settings(done)
    assert shown["concurrency"] == "11  # command line"
    assert shown["retries"] == "5  # environment (AFETCH_RETRIES)"
    assert shown["timeout"] == "3.0  # afetch.toml"
    assert shown["expect-status"] == '"2xx"  # afetch.toml'
    assert shown["header"] == '["X-A: b"]  # afetch.toml'
    assert shown["ordered"] == "true  # afetch.toml"
    assert shown["per-host"] == "0  # default"
    ignored = _settings(_afetch(tmp_path, "--show-config", "--no-config"))
    assert ignored["concurrency"] == "50  # default"


def test_every_option_has_the_variable_of_its_long_name(tmp_path: Path) -> None:
    """--body is AFETCH_BODY, -H AFETCH_HEADER (one value a line, spaces kept), --resolve
    AFETCH_RESOLVE; a bad value names its variable; an unknown AFETCH_* is warned about."""
    env = {
        "AFETCH_BODY": "1",
        "AFETCH_HEADER": "X-A: one two\nX-B: 3",
        "AFETCH_RESOLVE": "a.test:80:127.0.0.1",
        "AFETCH_PER_HOST": "4",
        "AFETCH_TIMOUT": "3",
    }
    done = _afetch(tmp_path, "--show-config", env=env)
    assert done.returncode == 0, done.stderr
    shown = _settings(done)
    assert shown["body"] == "true  # environment (AFETCH_BODY)"
    assert shown["header"] == '["X-A: one two", "X-B: 3"]  # environment (AFETCH_HEADER)'
    assert shown["resolve"].endswith("# environment (AFETCH_RESOLVE)")
    assert shown["per-host"] == "4  # environment (AFETCH_PER_HOST)"
    assert "afetch: warning: AFETCH_TIMOUT is not an afetch setting (ignored)" in done.stderr
    bad = _afetch(tmp_path, "http://127.0.0.1:1/", env={"AFETCH_TIMEOUT": "soon"})
    assert bad.returncode == 2
    assert "(from the environment: AFETCH_TIMEOUT)" in bad.stderr


def test_show_config_pastes_back_into_afetch_toml(tmp_path: Path) -> None:
    """--show-config prints TOML: written to afetch.toml it gives the same settings."""
    first = _afetch(
        tmp_path, "--show-config", "-H", 'X-Q: "quoted" \\ back', "-t", "250ms",
        "--expect-status", "2xx,301", "--no-follow", "-d", "a=1",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    (tmp_path / "afetch.toml").write_text(first.stdout)
    again = _afetch(tmp_path, "--show-config")
    assert again.returncode == 0, again.stderr
    values = {key: value.split("  # ")[0] for key, value in _settings(first).items()}
    assert {key: value.split("  # ")[0] for key, value in _settings(again).items()} == values


def test_pyproject_tool_section_and_an_explicit_file(tmp_path: Path) -> None:
    """[tool.afetch] in pyproject.toml and --config FILE are read."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.afetch]\nper-host = 3\n')
    assert _settings(_afetch(tmp_path, "--show-config"))["per-host"] == "3  # pyproject.toml"
    other = tmp_path / "ci.toml"
    other.write_text("per_host = 9\n")
    shown = _settings(_afetch(tmp_path, "--show-config", "--config", str(other)))
    assert shown["per-host"] == f"9  # {other}"


def test_a_setting_drives_a_real_run(tmp_path: Path) -> None:
    """A setting from afetch.toml changes what a real run does."""
    (tmp_path / "afetch.toml").write_text('default-scheme = "http"\nretries = 0\ntimeout = "0.5"\n')
    done = _afetch(tmp_path, "127.0.0.1:1")
    assert '"url":"http://127.0.0.1:1/"' in done.stdout  # the file's default scheme


def test_bad_config_files_are_usage_errors(tmp_path: Path) -> None:
    """Unknown keys, bad TOML and a missing --config file are usage errors."""
    (tmp_path / "afetch.toml").write_text("bogus = 1\n")
    done = _afetch(tmp_path, "http://127.0.0.1:1/")
    assert done.returncode == 2
    assert "'bogus' is not an afetch option" in done.stderr
    (tmp_path / "afetch.toml").write_text("concurrency = [\n")
    assert "not valid TOML" in _afetch(tmp_path, "http://127.0.0.1:1/").stderr
    missing = _afetch(tmp_path, "--config", str(tmp_path / "nope.toml"), "http://127.0.0.1:1/")
    assert missing.returncode == 2
    assert "No such file" in missing.stderr
