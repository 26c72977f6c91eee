"""``--resume``'s check that a run resumes the run that wrote ``-o FILE``.

The run's fingerprint covers what decides which request an index is and
how its record was judged: the positional URLs, each input file's content,
and the request-shaping options (method, headers, body, default scheme,
expectations, captures, --dedupe, --shard). Tuning (concurrency, timeouts,
retries, rate, workers) is left out: changing it on resume is the point of
resuming. It is kept in ``FILE.resume.json`` beside the records.

An input file's content is its size plus a SHA-256 of all of it, or of its
first and last 16 MiB when it is larger than 64 MiB (a 10-million-line list
is then fingerprinted in well under a second). Standard input and other
pipes cannot be read twice: only their name counts, as the README says.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import orjson

from afetch.config import Config, RunControl
from afetch.inputs import RequestParser, read_lines

_SAMPLE = 16 << 20
_WHOLE = 64 << 20


def side_file(output: str) -> Path:
    """Where the fingerprint of ``-o FILE``'s run is kept."""
    return Path(output + ".resume.json")


def fingerprint(
    config: Config, control: RunControl, urls: Sequence[str], paths: Sequence[str]
) -> dict[str, object]:
    """What must be the same for a resumed run to continue an earlier one."""
    expect = config.expect
    options = {
        "method": config.method,
        "headers": config.headers,
        "body": None if config.body is None else hashlib.sha256(config.body).hexdigest(),
        "default_scheme": config.default_scheme,
        "user_agent": config.user_agent,
        "follow": config.follow,
        "max_redirects": config.max_redirects,
        "captures": [config.capture_headers, config.capture_body, config.hash_body],
        "max_body": config.max_body,
        "expect": [
            expect.statuses.text,
            None if expect.body is None else expect.body.pattern,
            expect.max_latency_ms,
            [(name, pattern.pattern) for name, pattern in expect.headers],
            list(expect.jq),
            expect.cert_days,
        ],
        "tls_info": config.tls_info,
        "dedupe": control.dedupe,
        "shard": control.shard,
        **({"warn_on": config.warn_on.text} if config.warn_on is not None else {}),
        **({"shard_key": "host"} if control.shard_key == "host" else {}),
    }
    return {
        "afetch_resume": 1,
        "urls": hashlib.sha256(orjson.dumps(list(urls))).hexdigest(),
        "inputs": [_content(path) for path in paths],
        "options": hashlib.sha256(orjson.dumps(options)).hexdigest(),
    }


def _content(path: str) -> str:
    """A file's size and digest; a pipe's name (it cannot be read twice)."""
    if path == "-":
        return "stdin"
    try:
        info = os.stat(path)
    except OSError:
        return f"unreadable:{path}"  # the input stage reports it
    if not stat.S_ISREG(info.st_mode):
        return f"stream:{path}"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if info.st_size <= _WHOLE:
            while block := handle.read(1 << 20):
                digest.update(block)
        else:
            digest.update(handle.read(_SAMPLE))
            handle.seek(-_SAMPLE, os.SEEK_END)
            digest.update(handle.read(_SAMPLE))
    return f"{info.st_size}:{digest.hexdigest()}"


def differences(saved: dict[str, object], current: dict[str, object]) -> list[str]:
    """What changed since the run that wrote the records, in words."""
    changed = []
    if saved.get("urls") != current["urls"]:
        changed.append("the URL arguments")
    if saved.get("inputs") != current["inputs"]:
        changed.append("the input")
    if saved.get("options") != current["options"]:
        changed.append("the request options")
    return changed


def check_or_record(output: str, current: dict[str, object], *, force: bool) -> str | None:
    """Compare with the fingerprint beside ``output``; None when resuming is safe.

    The fingerprint is (re)written when the check passes (or is forced), and
    when there was none (records of a run made before this check).
    """
    path = side_file(output)
    try:
        saved = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        saved = None
    if isinstance(saved, dict) and not force and (changed := differences(saved, current)):
        return (
            f"--resume: {' and '.join(changed)} {'differs' if len(changed) == 1 else 'differ'}"
            f" from the run that wrote {output}"
            f" ({path.name}); resuming would mix two runs' indices. Use --resume-force"
            " to resume anyway, or a new -o FILE"
        )
    if saved != current:
        keep(output, current)
    return None


def keep(output: str, current: dict[str, object]) -> None:
    """Write the fingerprint beside ``output``: every ``-o FILE`` run can be resumed safely."""
    path = side_file(output)
    partial = path.with_name(path.name + ".tmp")
    partial.write_bytes(orjson.dumps(current, option=orjson.OPT_INDENT_2))
    os.replace(partial, path)


def first_mismatch(
    recorded: dict[int, str],
    parser: RequestParser,
    urls: Sequence[str],
    paths: Sequence[str],
) -> str | None:
    """For records without a fingerprint: the first index whose URL is not the input's.

    Reads the input (files only: a pipe cannot be read twice) as far as the
    highest recorded index; None when every recorded index matches.
    """
    if not recorded:
        return None
    last = max(recorded)
    items = itertools.chain(
        (parser.parse_argument(url) for url in urls),
        (parser.parse(raw) for path in paths for batch in read_lines(path) for raw in batch),
    )
    for item in items:
        if item is None:
            continue
        url = recorded.get(item.index)
        if url is not None and url != item.url:
            return f"record {item.index} is {url}, but request {item.index} is {item.url}"
        if item.index >= last:
            return None
    return f"records go up to index {last}, but the input has {parser.next_index} requests"
