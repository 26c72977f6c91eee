"""Input lines → specs or invalid_input results, in index order, read lazily."""

from __future__ import annotations

import asyncio
import gc
import gzip
import random
import string
import warnings
from pathlib import Path
from typing import Any

import pytest

from afetch.config import Config
from afetch.inputs import (
    MAX_LINE,
    InputError,
    LineSplitter,
    OverlongLine,
    RequestParser,
    make_url,
    parse_url,
    read_requests,
)
from afetch.inputs.parse import _plain_url
from afetch.inputs.read import _Reader
from afetch.models import NO_ID, FetchResult, FetchSpec
from tests.conftest import check_record, run_cli
from tests.server import ServerThread

CONFIG = Config()


def parse(line: bytes | str, config: Config = CONFIG) -> FetchSpec | FetchResult | None:
    raw = line.encode() if isinstance(line, str) else line
    return RequestParser(config).parse(raw)


def invalid_message(line: bytes | str) -> str:
    item = parse(line)
    assert isinstance(item, FetchResult), item
    record = check_record(item.to_record())
    assert record["error"]["type"] == "invalid_input"
    assert record["attempts"] == 0
    return str(record["error"]["message"])


@pytest.mark.parametrize(
    "line", ["", "   ", "\t", "# a comment", "   # indented comment", "\ufeff"]
)
def test_blank_and_comment_lines_are_skipped(line: str) -> None:
    """Skipped lines produce nothing and take no index."""
    assert parse(line) is None


def test_white_space_bom_and_crlf_are_trimmed() -> None:
    """A BOM, CRLF and surrounding blanks do not reach the URL."""
    spec = parse("\ufeff  http://example.com/a \r")
    assert isinstance(spec, FetchSpec)
    assert spec.url == "http://example.com/a"


@pytest.mark.parametrize(
    ("line", "url"),
    [
        ("example.com/x", "https://example.com/x"),
        ("localhost:8080/x", "https://localhost:8080/x"),
        ("HTTP://Example.COM/Path#frag", "http://example.com/Path"),
    ],
)
def test_urls_are_normalized_and_scheme_less_lines_get_the_default(line: str, url: str) -> None:
    """--default-scheme and :// are prepended; hosts lower-cased, fragments dropped."""
    spec = parse(line)
    assert isinstance(spec, FetchSpec)
    assert spec.url == url


def test_default_scheme_option_applies() -> None:
    """--default-scheme http changes what a bare host gets."""
    spec = parse("example.com", Config(default_scheme="http"))
    assert isinstance(spec, FetchSpec)
    assert spec.url == "http://example.com/"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("ftp://example.com/", "unsupported scheme"),
        ("http://exa mple.com/", "white space"),
        ("http://example.com:99999/", "port"),
        ("http:///path", "host"),
        ('{"url": "http://x/", "bogus": 1}', "unknown key"),
        ('{"url": "http://x/"', "bad JSON"),
        ("{}", "'url'"),
        ('{"url": 5}', "'url'"),
        ('{"url": "http://x/", "headers": {"A": 1}}', "header"),
        ('{"url": "http://x/", "headers": {"A": "b\\r\\nC: d"}}', "control character"),
        ('{"url": "http://x/", "method": "G ET"}', "method"),
        ('{"url": "http://x/", "body": "a", "json": {}}', "not both"),
        ('{"url": "http://x/", "timeout": -1}', "timeout"),
        ('{"url": "http://x/", "timeout": true}', "timeout"),
        ('{"url": "http://x/", "body": 5}', "body"),
        ("[1, 2]", "white space"),
        ("http://[::1/", "bad url"),
    ],
)
def test_bad_lines_become_invalid_input_records(line: str, fragment: str) -> None:
    """Every kind of bad line yields an invalid_input record saying why."""
    assert fragment.lower() in invalid_message(line).lower()


def test_non_utf8_lines_are_invalid_input() -> None:
    """Bytes that are not UTF-8 are reported, not crashed on."""
    assert "UTF-8" in invalid_message(b"http://example.com/\xff\xfe")


def test_json_request_objects_carry_every_field() -> None:
    """url, method, headers, json body, id and timeout all reach the spec."""
    spec = parse(
        '{"url": "http://x/p", "method": "post", "headers": {"X-A": "1"},'
        ' "json": {"k": [1]}, "id": {"n": 1}, "timeout": "250ms", "expect": {"status": [200]}}'
    )
    assert isinstance(spec, FetchSpec)
    assert spec.method == "POST"
    assert spec.body == b'{"k":[1]}'
    assert ("Content-Type", "application/json") in spec.headers
    assert spec.id == {"n": 1}
    assert spec.timeout == 0.25
    assert spec.expect is not None
    assert 200 in spec.expect.statuses
    assert 302 not in spec.expect.statuses


def test_a_null_id_is_echoed_and_a_missing_one_is_not() -> None:
    """id: null is a value; no id key means no id field."""
    with_null = parse('{"url": "http://x/", "id": null}')
    without = parse('{"url": "http://x/"}')
    assert isinstance(with_null, FetchSpec)
    assert with_null.id is None
    assert isinstance(without, FetchSpec)
    assert without.id is NO_ID


def test_an_invalid_json_line_keeps_its_id() -> None:
    """The id of a bad request object is still echoed, so callers can join on it."""
    item = parse('{"url": "ftp://x/", "id": "abc"}')
    assert isinstance(item, FetchResult)
    assert item.to_record()["id"] == "abc"


def test_indices_skip_comments_and_count_bad_lines() -> None:
    """Blank/comment lines take no index; invalid lines do."""
    parser = RequestParser(CONFIG)
    items = [parser.parse(raw) for raw in [b"a.com", b"# c", b"", b"ftp://b", b"c.com"]]
    indices = [item.index for item in items if item is not None]
    assert indices == [0, 1, 2]


def test_splitter_never_buffers_an_overlong_line() -> None:
    """A line over 64 KiB becomes one OverlongLine, and the next line survives."""
    splitter = LineSplitter()
    out = []
    for _ in range(200):  # 12.8 MiB without a newline
        out += splitter.feed(b"a" * 65536)
        assert len(splitter._pending) <= MAX_LINE
    out += splitter.feed(b"\nhttp://next/\npartial")
    out += splitter.close()
    assert isinstance(out[0], OverlongLine)
    assert out[1:] == [b"http://next/", b"partial"]
    assert "longer than" in invalid_message_of(out[0])


def invalid_message_of(raw: OverlongLine) -> str:
    item = RequestParser(CONFIG).parse(raw)
    assert isinstance(item, FetchResult)
    assert item.error is not None
    return item.error.message


def test_a_line_of_exactly_the_limit_is_accepted() -> None:
    """64 KiB is allowed; one byte more is not."""
    splitter = LineSplitter()
    assert splitter.feed(b"a" * MAX_LINE + b"\n") == [b"a" * MAX_LINE]
    assert isinstance(splitter.feed(b"a" * (MAX_LINE + 1) + b"\n")[0], OverlongLine)


async def test_files_are_read_in_order_with_gzip_and_no_trailing_newline(tmp_path: Path) -> None:
    """Positional URLs first, then each input; .gz is transparent; files do not run together."""
    plain = tmp_path / "a.txt"
    plain.write_bytes(b"\xef\xbb\xbfa.com\r\n# skip\n\nb.com")  # BOM, CRLF, no final newline
    packed = tmp_path / "b.txt.gz"
    packed.write_bytes(gzip.compress(b"c.com\nd.com\n"))
    urls = [
        item.url
        async for item in read_requests(
            ["arg.com"], [str(plain), str(packed)], RequestParser(CONFIG)
        )
    ]
    assert urls == [
        "https://arg.com/",
        "https://a.com/",
        "https://b.com/",
        "https://c.com/",
        "https://d.com/",
    ]


async def test_a_broken_gzip_input_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    """A corrupt input file is an error message, not a crash; later inputs still run."""
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"a.com\n" * 1000)[:-30])
    good = tmp_path / "good.txt"
    good.write_text("z.com\n")
    errors: list[InputError] = []
    items = [
        item
        async for item in read_requests(
            [], [str(bad), str(good)], RequestParser(CONFIG), on_error=errors.append
        )
    ]
    assert errors
    assert "bad.gz" in str(errors[0])
    assert items[-1].url == "https://z.com/"


def test_reader_outliving_its_loop_leaves_nothing_on_stderr(tmp_path: Path) -> None:
    """A run can end while the input thread still holds a batch: no "never awaited" warning."""
    source = tmp_path / "urls.txt"
    source.write_text("http://a.example/\n")
    loop = asyncio.new_event_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    reader = _Reader([str(source)], queue, loop)
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader.start()
        reader.join(5)
        gc.collect()
    assert not reader.is_alive()
    assert [str(w.message) for w in caught] == []


def test_plain_url_fast_path_agrees_with_yarl() -> None:
    """URLs taken without yarl's quoting come out exactly as yarl would make them."""
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?%#[] "
    hosts = ["a.example", "127.0.0.1", "A.example", "h:8080", "h:80", "h:443", "h:0080", "h:99999"]
    plain = 0
    for _ in range(20_000):
        tail = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        text = f"{rng.choice(['http', 'https'])}://{rng.choice(hosts)}/{tail}"
        try:
            expected = make_url(text, "http")
        except ValueError:
            with pytest.raises(ValueError, match=r"\w"):
                parse_url(text, "http")
            continue
        target, url = parse_url(text, "http")
        assert (target, url) == (expected, str(expected)), text
        assert (target.host, target.port, target.raw_path_qs) == (
            expected.host,
            expected.port,
            expected.raw_path_qs,
        )
        plain += _plain_url(text) is not None
    assert plain > 1000  # the fast path was taken often, not only the slow one


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_list_is_read_as_text(servers: ServerThread, tmp_path: Path, encoding: str) -> None:
    """A list saved as UTF-16 with its byte-order mark (PowerShell's `>`), CRLF lines, is
    read as the URLs it holds, not refused as binary."""
    listed = tmp_path / "urls.txt"
    text = f"{servers.base}/ok?u=1\r\n# note\r\n{servers.base}/ok?u=2"
    data = text.encode(encoding)
    listed.write_bytes(data if encoding == "utf-16" else b"\xfe\xff" + data)
    run = run_cli("-i", str(listed))
    urls = [r["url"] for r in sorted(run.records, key=lambda r: int(r["index"]))]
    assert urls == [f"{servers.base}/ok?u=1", f"{servers.base}/ok?u=2"]


def test_a_binary_file_is_refused_before_fetching(tmp_path: Path) -> None:
    """-i /bin/ls: one message and exit 2, not hundreds of invalid_input records."""
    binary = tmp_path / "program"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 40)
    run = run_cli("-i", str(binary), "--summary", status=2)
    assert run.returncode == 2
    assert run.records == []
    assert f"afetch: error: {binary}: looks binary (NUL bytes); not a list of URLs" in run.stderr
    piped = run_cli("--summary", stdin=binary.read_bytes(), status=2)
    assert piped.returncode == 2
    assert "<stdin>: looks binary" in piped.stderr


def test_names_in_the_summary_are_cut_to_a_line(tmp_path: Path) -> None:
    """A very long failing URL is shown in at most 80 columns, with an ellipsis."""
    url = "http://127.0.0.1:1/" + "x" * 300
    run = run_cli(url, "--summary", "--retries", "0", status=1)
    (line,) = [line for line in run.stderr.splitlines() if "Connection refused:" in line]
    name = line.split("Connection refused: ", 1)[1]
    assert len(name) == 80
    assert name.endswith("…")


def test_dedupe_digests_behave_as_a_set() -> None:
    """--dedupe's compact digest store answers exactly as a set would: new once, then seen
    (keys sharing a bucket, both ends of the 64-bit range, 200 000 random ones)."""
    from afetch.inputs.seen import Digests

    rng = random.Random(7)
    keys = [0, 2**64 - 1, 1 << 16, 2 << 16, 3 << 16, 1]
    keys += [rng.getrandbits(64) for _ in range(200_000)]
    keys += [rng.choice(keys) for _ in range(50_000)]  # repeats
    digests, reference = Digests(), set()
    for key in keys:
        assert digests.add(key) is (key not in reference)
        reference.add(key)
    assert all(not digests.add(key) for key in reference)
