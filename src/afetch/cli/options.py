"""The click table of ``afetch``: every option once, its help group, and the examples.

``PARAMETERS`` is applied to the command in ``command.py``; an option's name
is the keyword the command receives, its variable ``AFETCH_`` + its long name
(``settings.SettingOption``). Unit parsers are named as text and imported when
first used, so ``--help`` and ``--version`` never import ``afetch.config``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from afetch._version import __version__
from afetch.cli.help import EXAMPLES, GroupedCommand
from afetch.cli.settings import SettingOption
from afetch.defaults import DEFAULT_CONCURRENCY


def _parsed(
    parse: Callable[[str], Any] | str,
) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback from one of config's unit parsers, so bad values name the option.

    A parser named as ``"module.function"`` is imported when first used: --help
    and --version then never import afetch.config and its dependencies.
    """

    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        nonlocal parse
        if isinstance(parse, str):
            module, _, name = parse.rpartition(".")
            parse = getattr(importlib.import_module(f"afetch.{module}"), name)
            assert callable(parse)
        try:
            if isinstance(value, tuple):
                return tuple(parse(item) for item in value)
            return None if value is None else parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from exc

    return convert


def _method(value: str) -> str:
    from afetch.http.request import check_method

    return check_method(value)


def _workers(value: str | int) -> str | int:
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 64:
        raise ValueError(f"{value!r} is not 'auto' or a number from 1 to 64")
    return number


#: Every option: its variable is AFETCH_ + its long name (afetch.cli.settings).
option = functools.partial(click.option, cls=SettingOption)

DURATION: dict[str, Any] = {"callback": _parsed("config.parse_duration"), "metavar": "DURATION"}
SIZE: dict[str, Any] = {"callback": _parsed("config.parse_size"), "metavar": "SIZE"}


def afetch_command(callback: Callable[..., None]) -> click.Command:
    """The command: ``callback`` with every parameter of the table, in help order."""
    for parameter in reversed(PARAMETERS):
        callback = parameter(callback)
    made: click.Command = click.command(
        cls=GroupedCommand,
        epilog=EXAMPLES,
        context_settings={
            "help_option_names": ["-h", "--help"],
            "max_content_width": 100,
            "show_default": True,
        },
    )(callback)
    return made


PARAMETERS: list[Callable[[Any], Any]] = [
    click.argument("urls", nargs=-1, metavar="[URL]..."),
    option(
        "-i",
        "--input",
        "inputs",
        multiple=True,
        metavar="PATH",
        type=click.Path(exists=True, dir_okay=False, allow_dash=True),
        help="Read request lines from PATH ('-' is stdin; .gz is decompressed). Repeatable.",
    ),
    option(
        "-o",
        "--output",
        metavar="PATH",
        type=click.Path(dir_okay=False, allow_dash=True),
        help="Write records to PATH instead of stdout.",
    ),
    option(
        "-c",
        "--concurrency",
        "--parallel-max",  # curl's name
        type=click.IntRange(1, 100_000),
        metavar="N",
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help="Requests in flight at once.",
    ),
    option(
        "--per-host",
        type=click.IntRange(0, 100_000),
        default=0,
        metavar="N",
        help="At most N requests in flight to one host (name and port); 0 = no cap.",
    ),
    option(
        "--host-interval",
        **DURATION,
        help="At least this long between request starts to one host (e.g. 500ms).",
    ),
    option(
        "--adaptive/--no-adaptive",
        default=True,
        show_default=True,
        help="Slow a host down on 429/503 and pace it by its rate-limit headers"
        " (--no-adaptive: e.g. to load-test your own server).",
    ),
    option(
        "--rate",
        default=None,
        metavar="RATE",
        callback=_parsed("config.parse_rate"),
        help="Start at most RATE requests (N/s, N/m, N/h), evenly spaced, across the run.",
    ),
    option(
        "-t",
        "--timeout",
        "-m",
        "--max-time",
        "timeout",
        **DURATION,
        default="10",
        show_default=True,
        help="Time limit for one attempt: connect, headers and body together.",
    ),
    option(
        "--connect-timeout",
        **DURATION,
        default=None,
        help="Time limit for getting a connection (DNS, TCP and TLS).",
    ),
    option(
        "--retries",
        "--retry",
        "retries",
        type=click.IntRange(0, 100),
        metavar="N",
        default=2,
        show_default=True,
        help="Retries on connect/timeout/protocol errors and 429/502/503/504.",
    ),
    option("--retry-all", is_flag=True, help="Retry non-idempotent methods (POST, PATCH) too."),
    option(
        "--retry-max-wait",
        **DURATION,
        default="30",
        show_default=True,
        help="Longest Retry-After honoured; a longer demand ends the retries.",
    ),
    option(
        "--max-body",
        **SIZE,
        default="10MiB",
        show_default=True,
        help="Read at most SIZE of each body (after decompression); more is 'truncated'.",
    ),
    option(
        "--default-scheme",
        type=click.Choice(["http", "https"]),
        default="https",
        show_default=True,
        help="Scheme for lines without '://'.",
    ),
    option(
        "-X",
        "--method",
        "--request",  # curl's name
        default=None,
        callback=_parsed(_method),
        show_default="GET, or POST with --data/--json",
        help="HTTP method.",
    ),
    option(
        "-I", "--head", is_flag=True, help="HEAD requests: status and headers, no body (-X HEAD)."
    ),
    option(
        "-H",
        "--header",
        "headers",
        callback=_parsed("config.parse_header"),
        multiple=True,
        metavar="'K: V'",
        help="Add a request header. Repeatable.",
    ),
    option(
        "-d",
        "--data",
        "--data-binary",  # what -d @FILE does here: the file's bytes unchanged
        multiple=True,
        metavar="STRING|@FILE",
        help="Request body (form-encoded); repeats are joined with '&'. @FILE sends its bytes.",
    ),
    option(
        "--json",
        "json_text",
        metavar="STRING|@FILE",
        help="JSON request body; sets Content-Type and Accept to application/json.",
    ),
    option(
        "--proxy",
        metavar="URL",
        callback=_parsed("config.parse_proxy"),
        show_default="*_proxy environment variables",
        help="Proxy for every request ('' for none).",
    ),
    option(
        "--noproxy",
        "no_proxy",
        metavar="HOSTS",
        help="Hosts (comma-separated, with their subdomains; '*' for all) reached without "
        "the proxy; replaces NO_PROXY.",
    ),
    option(
        "--http-client",
        type=click.Choice(["lean", "aiohttp"]),
        default="lean",
        show_default=True,
        help="Client for direct requests: afetch's lean HTTP/1.1 one, or aiohttp's "
        "(proxied requests always use aiohttp).",
    ),
    option(
        "--http2/--http1.1",
        "http2",
        default=None,
        show_default="HTTP/1.1",
        help="Offer HTTP/2 by ALPN on https and speak what the server picks; "
        "--http1.1 forces HTTP/1.1.",
    ),
    option(
        "--http2-prior-knowledge",
        is_flag=True,
        help="Speak HTTP/2 at once on http:// (h2c); https:// offers it as --http2 does.",
    ),
    option(
        "--resolve",
        "pins",
        multiple=True,
        metavar="HOST:PORT:ADDR",
        callback=_parsed("config.parse_resolve"),
        help="Connect to ADDR (comma-separated list; PORT may be *) for HOST:PORT, "
        "without a lookup, as curl does (repeatable).",
    ),
    option(
        "--dns-servers",
        metavar="ADDR[:PORT],...",
        callback=_parsed("config.parse_dns_servers"),
        help="Name servers to ask instead of the system's (as curl's option).",
    ),
    option("-4", "--ipv4", is_flag=True, help="Connect over IPv4 only."),
    option("-6", "--ipv6", is_flag=True, help="Connect over IPv6 only."),
    option("-k", "--insecure", is_flag=True, help="Do not verify TLS certificates."),
    option(
        "--cacert",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="Trust only the CA certificates in FILE (PEM).",
    ),
    option(
        "--cert",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="Client certificate (PEM; may hold the key too).",
    ),
    option(
        "--key",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="Private key for --cert (PEM).",
    ),
    option("-u", "--user", metavar="USER:PASS", help="Basic authentication."),
    option("--oauth2-bearer", metavar="TOKEN", help="Send 'Authorization: Bearer TOKEN'."),
    option("--digest", is_flag=True, help="Answer a Digest challenge with -u (RFC 7616)."),
    option(
        "--cookie-jar",
        metavar="FILE",
        help="Keep the cookies responses set, send them to their sites, write them to FILE.",
    ),
    option("--netrc", is_flag=True, help="Credentials from ~/.netrc for the hosts it names."),
    option("--netrc-optional", is_flag=True, help="Like --netrc; a missing file is no error."),
    option("--netrc-file", metavar="FILE", help="Credentials from FILE (as --netrc)."),
    option(
        "-b",
        "--cookie",
        metavar="'K=V; K2=V2'|FILE",
        help="Send these cookies; a FILE (no '='): a Netscape cookie file, read into a jar.",
    ),
    option(
        "-A",
        "--user-agent",
        metavar="TEXT",
        callback=_parsed("config.parse_user_agent"),
        show_default=f"afetch/{__version__}",
        help="User-Agent ('' for none).",
    ),
    option(
        "-L/-N",
        "--follow/--no-follow",
        "--location",  # curl's name
        default=True,
        show_default="follow",
        help="Follow redirects.",
    ),
    option(
        "--max-redirects",
        "--max-redirs",  # curl's name
        type=click.IntRange(0, 1000),
        metavar="N",
        default=10,
        show_default=True,
        help="Redirects followed at most; one more is 'too_many_redirects'.",
    ),
    option("--headers", "capture_headers", is_flag=True, help="Add response headers to records."),
    option(
        "--body",
        "capture_body",
        is_flag=True,
        help="Add the body to records: text if it decodes with its charset, else base64.",
    ),
    option(
        "--output-dir",
        metavar="DIR",
        type=click.Path(file_okay=False, path_type=Path),
        help="Save each body to a file in DIR (created if missing); see saved_to.",
    ),
    option("--hash", "hash_body", is_flag=True, help="Add the sha256 of the body to records."),
    option(
        "--expect-status",
        metavar="LIST",
        callback=_parsed("expect.parse_statuses"),
        show_default="200-399",
        help="Statuses that are ok: codes, classes, ranges (200,204,3xx,200-299).",
    ),
    option(
        "--expect-body",
        metavar="REGEX",
        callback=_parsed("expect.body_regex"),
        help="The body (up to --max-body) must match REGEX (Python syntax, searched).",
    ),
    option(
        "--expect-jq",
        "expect_jq",
        metavar="EXPR",
        multiple=True,
        callback=_parsed("expect.checked_jq"),
        help="The body as JSON must make jq EXPR give a truthy first output (repeatable).",
    ),
    option(
        "--expect-cert-days",
        type=click.IntRange(0, None),
        metavar="N",
        help="https: the certificate must be valid N more days (implies --tls-info).",
    ),
    option(
        "--expect-http-version",
        type=click.Choice(["1.0", "1.1", "2"]),
        metavar="1.0|1.1|2",
        help="The response must come over this HTTP version (with --http2: 2).",
    ),
    option(
        "--tls-info",
        is_flag=True,
        help="Add TLS version, cipher and certificate facts to records of https responses.",
    ),
    option(
        "--max-latency",
        metavar="DURATION",
        callback=_parsed("config.parse_duration"),
        help="A request taking longer (elapsed_ms) is not ok.",
    ),
    option(
        "--warn-on",
        metavar="KIND,...",
        callback=_parsed("warn.parse_warn_on"),
        help="Failures only for these reasons (timeout, blocked, 429, 5xx, slow, any error"
        " kind) are warnings: reported, warn: true, not failing the run.",
    ),
    option(
        "--max-failures",
        type=click.IntRange(1, None),
        metavar="N",
        help="Stop starting requests after N records are not ok; cancel the rest; exit 1.",
    ),
    option(
        "--recheck",
        type=click.IntRange(0, 10),
        default=0,
        metavar="N",
        help="Try requests that ended not ok again, up to N times, after the main pass.",
    ),
    option(
        "--recheck-delay",
        default="5s",
        show_default=True,
        **DURATION,
        help="Wait this long before each --recheck round.",
    ),
    option(
        "--max-error-rate",
        metavar="PCT",
        callback=_parsed("config.parse_percent"),
        help="Pass while at most PCT of records are not ok (e.g. 5%) instead of requiring all ok.",
    ),
    option(
        "--max-p95",
        metavar="DURATION",
        callback=_parsed("config.parse_duration"),
        help="Fail the run when the p95 latency of ok records is above DURATION.",
    ),
    option(
        "--min-requests",
        type=click.IntRange(0, None),
        metavar="N",
        help="Fail the run when it made fewer than N requests (an emptied list).",
    ),
    option(
        "--max-host-errors",
        type=click.IntRange(1, None),
        metavar="N",
        help="After N connection failures in a row on a host, skip its other requests.",
    ),
    option("--junit", metavar="PATH", help="Write a JUnit XML report to PATH."),
    option(
        "--ordered", is_flag=True, help="Write records in input order (bounded reorder window)."
    ),
    option("--dedupe", is_flag=True, help="Skip requests whose method and URL were already seen."),
    option(
        "--deadline",
        metavar="DURATION",
        callback=_parsed("config.parse_duration"),
        help="Budget for the whole run; unfinished requests are then cancelled.",
    ),
    option(
        "--shard",
        metavar="K/N",
        callback=_parsed("config.parse_shard"),
        help="Fetch only indices i with i mod N = K-1 (one of N parallel runs).",
    ),
    option(
        "--shard-key",
        type=click.Choice(["index", "host"]),
        default="index",
        show_default=True,
        help="host: a host's requests all go to one shard (a stable hash of its name).",
    ),
    option(
        "--resume",
        is_flag=True,
        help="With -o FILE: skip indices already in FILE, append the rest.",
    ),
    option(
        "--resume-force",
        is_flag=True,
        help="--resume even if the input or options differ from the run that wrote FILE.",
    ),
    option(
        "--workers",
        default="auto",
        callback=_parsed(_workers),
        metavar="N|auto",
        show_default=True,
        help="Fetch in N processes (concurrency is shared among them; --rate implies 1); "
        "auto: one, plus more while its loop is CPU-bound.",
    ),
    option("--exit-zero", is_flag=True, help="Exit 0 even when some records are not ok."),
    option(
        "--progress/--no-progress",
        default=None,
        show_default="on when stderr is a terminal",
        help="Progress bar on stderr.",
    ),
    option(
        "--summary/--no-summary",
        default=None,
        show_default="on when stderr is a terminal",
        help="Summary on stderr at the end.",
    ),
    option(
        "-q",
        "--quiet",
        "-s",
        "--silent",
        "quiet",
        is_flag=True,
        help="No progress, summary or warnings.",
    ),
    option("-v", "--verbose", is_flag=True, help="Also log each failed request on stderr."),
    option(
        "--compressed",
        "-f",
        "--fail",
        "-S",
        "--show-error",
        "-Z",
        "--parallel",
        "curl_habits",
        is_flag=True,
        hidden=True,
        help="curl options afetch always behaves as: accepted, so `curl -fsSL` habits work.",
    ),
    option(
        "--color",
        "--colour",
        "color",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        help="Colour in the summary; auto: when stderr is a terminal and NO_COLOR is unset.",
    ),
    option(
        "--deny-private",
        is_flag=True,
        help="Refuse to connect to loopback, private, link-local, CGNAT and metadata"
        " addresses (checked on the address dialled).",
    ),
    option(
        "--allow",
        metavar="CIDR|HOST",
        multiple=True,
        help="Addresses or hosts --deny-private lets through (repeatable).",
    ),
    option(
        "--deny",
        metavar="CIDR|HOST",
        multiple=True,
        help="Addresses or hosts never to connect to (repeatable).",
    ),
    option(
        "--include",
        metavar="REGEX",
        multiple=True,
        help="Fetch only URLs matching one of these (repeatable); the rest are skipped.",
    ),
    option(
        "--exclude",
        metavar="REGEX",
        multiple=True,
        help="Skip URLs matching this (repeatable).",
    ),
    option(
        "--repro",
        is_flag=True,
        help="Add to each failed record a curl command that sends the same request.",
    ),
    option(
        "--redact",
        metavar="NAME",
        multiple=True,
        help="Also mask the values of this query parameter or header (repeatable).",
    ),
    option(
        "--secret",
        metavar="VALUE",
        multiple=True,
        help="Mask this literal value wherever it appears (repeatable; AFETCH_SECRET: one a line).",
    ),
    option(
        "--no-redact",
        is_flag=True,
        help="Write URLs, credentials and cookies as they are (local debugging only).",
    ),
    option(
        "--markdown",
        metavar="PATH",
        help="Write a Markdown report (totals, thresholds, failures, flaky, slowest,"
        " certificates).",
    ),
    option(
        "--github",
        is_flag=True,
        help="Append the Markdown report to $GITHUB_STEP_SUMMARY; ::error per failed check.",
    ),
    option(
        "--baseline",
        metavar="FILE",
        help="Records of an earlier run: fail only on failures that are new against them.",
    ),
    option(
        "--report",
        "report_only",
        is_flag=True,
        help="Fetch nothing: the arguments (or stdin) are records files; rebuild the reports.",
    ),
    option(
        "--config",
        "config_file",
        metavar="FILE",
        help="Option defaults from FILE (TOML)  [default: afetch.toml, or [tool.afetch] in"
        " pyproject.toml]. AFETCH_<OPTION> variables override it; the command line beats both.",
    ),
    option("--no-config", is_flag=True, help="Read no config file."),
    option(
        "--show-config", is_flag=True, help="Print every option's value and where it came from."
    ),
    option("--schema", is_flag=True, help="Print the JSON Schema of a record and exit."),
    click.version_option(__version__, "--version", prog_name="afetch"),
]
