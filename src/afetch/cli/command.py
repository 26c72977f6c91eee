"""The ``afetch`` command: options → Config, streams opened, stages wired, exit status.

Only click lives here; the HTTP machinery is imported inside the command so
``--version`` and ``--help`` start fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

import click

from afetch.cli.options import afetch_command
from afetch.cli.streams import Streams

if TYPE_CHECKING:
    from afetch.config import Config, RunControl, UiOptions
    from afetch.expect import Expectation
    from afetch.redact import Redaction
    from afetch.sinks.reports import Baseline

_TTY_HINT = (
    "afetch: no URLs given and standard input is a terminal.\n"
    "Pass URLs as arguments, read them with -i FILE, or pipe them in:\n"
    "  afetch https://example.com\n"
    "  afetch -i urls.txt > out.jsonl\n"
    "  cat urls.txt | afetch | jq .\n"
    "Try 'afetch --help' for every option."
)


@afetch_command
def command(**given: Any) -> None:
    """Fetch URLs concurrently; print one JSON record per request on stdout.

    URLs come from the arguments, from -i files, or from stdin (one per line;
    '#' comments and blank lines are skipped; a line starting with '{' is a
    JSON request object). Exit status: 0 all ok, 1 some not ok, 2 usage error,
    130/143/129 interrupted (SIGINT, SIGTERM, SIGHUP).
    """
    o = SimpleNamespace(**given)
    if o.schema:
        _print_schema()
        return
    if o.show_config:
        from afetch.cli.settings import show

        ctx = click.get_current_context()
        click.echo(show(ctx, ctx.obj))
        return
    config = _config(o)
    if not o.report_only:
        _refuse_files_given_as_urls(o.urls)
    env = Streams.current()
    urls, inputs = o.urls, _inputs(o, env)
    ui, control = _ui(o, env), _control(o)
    earlier = _load_baseline(o.baseline) if o.baseline is not None else None
    if o.report_only:
        from afetch.cli.rebuild import rebuild

        sys.exit(int(rebuild([*urls, *inputs], ui, control, earlier, env)))
    from afetch.cli.resume import prepare_output

    out, done = prepare_output(o.output, config, control, (urls, inputs), env, o.resume_force)
    from afetch.cli.session import run

    sys.exit(int(run(config, ui, control, (urls, inputs), out, env, done, earlier)))


def _method(o: SimpleNamespace) -> str | None:
    """``-I`` is curl's ``-X HEAD``; with another method or a body it is a usage error."""
    if not o.head:
        return o.method  # type: ignore[no-any-return]
    if o.method not in (None, "HEAD"):
        raise click.UsageError(f"give -I/--head or -X {o.method}, not both")
    if o.data or o.json_text is not None:
        raise click.UsageError("-I/--head sends no body: not with --data or --json")
    return "HEAD"


def _config(o: SimpleNamespace) -> Config:
    """What every request needs (a usage error for values that do not fit together)."""
    from afetch.config import Config, request_shape
    from afetch.expect import compile_regex
    from afetch.http.policy import AddressPolicy
    from afetch.tls import TlsOptions

    if o.ipv4 and o.ipv6:
        raise click.UsageError("give -4/--ipv4 or -6/--ipv6, not both")
    try:
        tls_options = TlsOptions(insecure=o.insecure, cacert=o.cacert, cert=o.cert, key=o.key)
        method, sent, body, removed = request_shape(
            method=_method(o),
            headers=o.headers,
            data=o.data,
            json_text=o.json_text,
            user=o.user,
            cookie=o.cookie if o.cookie is None or "=" in o.cookie else None,
            bearer=o.oauth2_bearer,
            digest=o.digest,
        )
        return Config(
            concurrency=o.concurrency,
            per_host=o.per_host,
            rate=o.rate,
            timeout=o.timeout,
            connect_timeout=o.connect_timeout,
            retries=o.retries,
            host_interval=o.host_interval,
            adaptive=o.adaptive,
            log_pacing=o.verbose and not o.quiet,
            repro=o.repro,
            warn_on=o.warn_on,
            retry_all=o.retry_all,
            retry_max_wait=o.retry_max_wait,
            max_body=o.max_body,
            default_scheme=o.default_scheme,
            method=method,
            headers=sent,
            removed_headers=removed,
            body=body,
            proxy=o.proxy,
            no_proxy=o.no_proxy,
            http_client=o.http_client,
            http2=_http2(o),
            resolve=o.pins,
            dns_servers=o.dns_servers or (),
            ip_version=4 if o.ipv4 else 6 if o.ipv6 else 0,
            tls=tls_options.context(),
            tls_options=tls_options,
            user_agent=o.user_agent,
            follow=o.follow,
            max_redirects=o.max_redirects,
            capture_headers=o.capture_headers,
            capture_body=o.capture_body,
            hash_body=o.hash_body,
            max_host_errors=o.max_host_errors,
            tls_info=o.tls_info or o.expect_cert_days is not None,
            output_dir=_make_dir(o.output_dir),
            expect=_expectation(o),
            redaction=_redaction(o),
            netrc=_netrc(o),
            digest_user=_digest_user(o),
            cookie_file=_cookie_file(o),
            cookie_jar=o.cookie_jar,
            policy=AddressPolicy.build(deny_private=o.deny_private, allow=o.allow, deny=o.deny),
            include=tuple(compile_regex(p, "--include") for p in o.include),
            exclude=tuple(compile_regex(p, "--exclude") for p in o.exclude),
        )
    except (ValueError, OSError) as exc:  # OSError: ssl.SSLError from a bad certificate
        raise click.UsageError(str(exc)) from exc


def _cookie_file(o: SimpleNamespace) -> str | None:
    """``-b FILE``: checked now (a usage error), read again by the run's jar."""
    if o.cookie is None or "=" in o.cookie:
        return None
    from afetch.cookies import CookieJar

    CookieJar(o.cookie)  # ValueError: not a cookie file
    return str(o.cookie)


def _digest_user(o: SimpleNamespace) -> tuple[str, str] | None:
    if not o.digest or o.user is None:
        return None
    name, _, password = str(o.user).partition(":")
    return name, password


def _jar(o: SimpleNamespace) -> bool:
    return o.cookie_jar is not None or (o.cookie is not None and "=" not in o.cookie)


def _netrc(o: SimpleNamespace) -> tuple[tuple[str, str, str], ...]:
    from afetch.config import read_netrc

    if not (o.netrc or o.netrc_optional or o.netrc_file):
        return ()
    return read_netrc(o.netrc_file, required=not o.netrc_optional or bool(o.netrc_file))


def _redaction(o: SimpleNamespace) -> Redaction:
    """What records and messages mask: on unless --no-redact, which is said once."""
    from afetch.redact import NO_REDACTION, Redaction

    if o.no_redact:
        Streams.current().say(
            "afetch: warning: --no-redact: passwords, tokens and cookies are written as they are"
        )
        return NO_REDACTION
    names = frozenset(name.strip().lower() for name in o.redact if name.strip())
    return Redaction(names=names, secrets=tuple(secret for secret in o.secret if secret))


def _expectation(o: SimpleNamespace) -> Expectation:
    from afetch.expect import DEFAULT_STATUSES, Expectation

    return Expectation(
        statuses=o.expect_status or DEFAULT_STATUSES,
        body=o.expect_body,
        jq=o.expect_jq,
        cert_days=o.expect_cert_days,
        http_version=o.expect_http_version,
        max_latency_ms=None if o.max_latency is None else o.max_latency * 1000,
    )


def _inputs(o: SimpleNamespace, env: Streams) -> tuple[str, ...]:
    """The input paths; stdin when nothing else is given (never a terminal or a closed fd)."""
    inputs: tuple[str, ...] = o.inputs
    if not o.urls and not inputs:
        if env.stdin_tty:
            env.say(_TTY_HINT)
            sys.exit(2)
        inputs = ("-",)
    if env.stdin_closed and "-" in inputs:
        raise click.UsageError(
            "no URLs given and standard input is closed: pass URLs as arguments or -i FILE"
            if not o.urls and inputs == ("-",)
            else "-i -: standard input is closed"
        )
    return inputs


def _ui(o: SimpleNamespace, env: Streams) -> UiOptions:
    """What the person sees: progress, summary and colour follow stderr being a terminal."""
    from afetch.config import UiOptions

    tty = env.stderr_tty
    return UiOptions(
        progress=not o.quiet and (tty if o.progress is None else o.progress),
        summary=not o.quiet and (tty if o.summary is None else o.summary),
        verbose=o.verbose and not o.quiet,
        exit_zero=o.exit_zero,
        color=o.color == "always" or (o.color == "auto" and tty and not os.environ.get("NO_COLOR")),
    )


def _control(o: SimpleNamespace) -> RunControl:
    """How the run as a whole goes: order, limits, shards, reports, workers."""
    from afetch.config import RunControl, Thresholds

    _check_reports_on_stdout(o)

    return RunControl(
        ordered=o.ordered,
        dedupe=o.dedupe,
        deadline=o.deadline,
        max_failures=o.max_failures,
        shard=o.shard,
        shard_key=o.shard_key,
        resume=o.resume or o.resume_force,
        junit=o.junit,
        recheck=o.recheck,
        recheck_delay=o.recheck_delay,
        markdown=o.markdown,
        github=o.github,
        thresholds=Thresholds(
            max_error_rate=o.max_error_rate,
            max_p95_ms=None if o.max_p95 is None else o.max_p95 * 1000,
            min_requests=o.min_requests,
        ),
        # One process spaces starts exactly (a rate-limited run is never CPU-bound) and
        # keeps one cookie jar.
        workers=1 if o.rate or _jar(o) else _workers(o.workers, o.concurrency),
    )


def _check_reports_on_stdout(o: SimpleNamespace) -> None:
    """``--markdown -`` / ``--junit -`` write to stdout: only when records do not."""
    on_stdout = [name for name in ("markdown", "junit") if getattr(o, name) == "-"]
    if len(on_stdout) > 1:
        raise click.UsageError("--markdown - and --junit -: only one report can go to stdout")
    if on_stdout and not o.report_only and o.output in (None, "-"):
        raise click.UsageError(
            f"--{on_stdout[0]} -: standard output carries the records;"
            " give -o FILE for them (or rebuild the report with --report)"
        )


def _workers(workers: int | Literal["auto"], concurrency: int) -> int | Literal["auto"]:
    if workers == "auto":
        return "auto" if concurrency > 1 else 1
    return min(workers, concurrency)


def _http2(o: SimpleNamespace) -> Literal["off", "alpn", "prior"]:
    """--http1.1 wins; HTTP/2 is the lean client's, and not through HTTP proxies."""
    mode: Literal["off", "alpn", "prior"] = (
        "off" if o.http2 is False else "prior" if o.http2_prior_knowledge else "alpn"
    )
    if mode == "alpn" and not o.http2:
        mode = "off"
    if mode == "off":
        return mode
    if o.http_client == "aiohttp":
        raise click.UsageError(
            "--http2 needs the lean client: --http-client aiohttp speaks HTTP/1.1 only"
        )
    from afetch.http.proxy import Proxies

    proxies = Proxies.from_option(o.proxy, o.no_proxy)
    if proxies and not proxies.only_socks:
        where = "--proxy" if o.proxy else "the *_proxy environment variables"
        raise click.UsageError(
            f"--http2 does not go through HTTP proxies (set by {where}): "
            "use --proxy '' for direct connections, a socks5:// proxy, or --http1.1"
        )
    return mode


def _load_baseline(path: str) -> Baseline:
    from afetch.sinks.reports import Baseline

    try:
        return Baseline.load(path)
    except ValueError as exc:  # BadRecords
        raise click.UsageError(f"--baseline {exc}") from exc


def _refuse_files_given_as_urls(urls: Sequence[str]) -> None:
    """``afetch urls.txt`` or ``afetch -``: a list of URLs meant, not a host named so."""
    for url in urls:
        if url == "-":
            raise click.UsageError("'-' is not a URL: did you mean -i - (read URLs from stdin)?")
        if "://" not in url and os.path.isfile(url):
            raise click.UsageError(f"{url!r} is a file, not a URL: did you mean -i {url}?")


def _make_dir(path: Path | None) -> Path | None:
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--output-dir {path}: {exc.strerror}") from exc
    return path


def _print_schema() -> None:
    import json

    from afetch.schema import RECORD_SCHEMA

    click.echo(json.dumps(RECORD_SCHEMA, indent=2))
