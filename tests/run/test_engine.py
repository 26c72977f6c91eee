"""The engine: bounded concurrency, lazy input, completion order, clean stops."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from yarl import URL

import afetch
from afetch.config import Config
from afetch.inputs import RequestParser
from afetch.models import FetchResult, FetchSpec
from afetch.run.engine import Engine
from afetch.run.scheduler import RunLimits, StopReason
from tests.conftest import check_record, records_of, transport_free
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def specs(urls: list[str], config: Config) -> list[FetchSpec | FetchResult]:
    parser = RequestParser(config)
    return [item for url in urls if (item := parser.parse_argument(url)) is not None]


async def test_concurrency_is_never_exceeded(servers: ServerThread) -> None:
    """A server-side in-flight counter never sees more than -c requests at once."""
    urls = [f"{servers.base}/count/cap?s=0.05"] * 60
    results = await afetch.fetch_all(urls, concurrency=7, retries=0)
    assert all(result.ok for result in results)
    assert servers.state.max_inflight["cap"] == 7


async def test_concurrency_above_aiohttps_default_pool_is_honoured(servers: ServerThread) -> None:
    """-c 150 really means 150 in flight: the connector's default 100 does not cap it
    (to one host, once its first answers came on kept-alive connections)."""
    urls = [f"{servers.base}/count/wide?s=0.3"] * 200
    results = await afetch.fetch_all(urls, concurrency=150, retries=0)
    assert all(result.ok for result in results)
    assert servers.state.max_inflight["wide"] == 150


async def test_fetch_all_returns_input_order_with_failures_as_results(
    servers: ServerThread,
) -> None:
    """Results come back in input order; bad input is a result, not an exception."""
    urls = [f"{servers.base}/slow?s=0.2", "ftp://nope/", f"{servers.base}/ok"]
    results = await afetch.fetch_all(urls, retries=0)
    assert [result.index for result in results] == [0, 1, 2]
    assert [result.ok for result in results] == [True, False, True]
    records_of(results)


async def test_stream_yields_in_completion_order(servers: ServerThread) -> None:
    """The fast request's record comes before the slow one's."""
    urls = [f"{servers.base}/slow?s=0.3", f"{servers.base}/ok"]
    order = [result.index async for result in afetch.stream(urls)]
    assert order == [1, 0]


async def test_input_is_pulled_only_as_slots_free(servers: ServerThread) -> None:
    """An endless request source is consumed lazily: breaking out early stops it."""
    pulled = 0
    config = Config(concurrency=4, retries=0)
    parser = RequestParser(config)

    def endless() -> Iterator[FetchSpec | FetchResult]:
        nonlocal pulled
        for _ in itertools.count():
            pulled += 1
            item = parser.parse_argument(f"{servers.base}/ok")
            assert item is not None
            yield item

    seen = 0
    async with contextlib.aclosing(Engine(config).results(endless())) as results:
        async for _ in results:
            seen += 1
            if seen == 20:
                break
    # Queued work is bounded by the worker count and the two small queues.
    assert 20 <= pulled <= 20 + 3 * config.concurrency + 2


async def test_stop_gives_every_unfinished_request_a_cancelled_record(
    servers: ServerThread,
) -> None:
    """After stop(): one record per index read; in-flight ones tried once, queued ones never.

    Input not yet read when the run stops is never read, so it has no record.
    """
    config = Config(concurrency=3, retries=0)
    engine = Engine(config)
    urls = [f"{servers.base}/ok"] + [f"{servers.base}/hang"] * 3 + [f"{servers.base}/ok"] * 5
    records = []
    async for result in engine.results(specs(urls, config)):
        records.append(check_record(result.to_record()))
        if len(records) == 1:
            asyncio.get_running_loop().call_later(0.3, engine.stop)
    indices = sorted(r["index"] for r in records)
    assert indices == list(range(len(indices)))
    assert len(indices) < len(urls)
    cancelled = [r for r in records if r["error"] and r["error"]["type"] == "cancelled"]
    assert [r["attempts"] for r in cancelled].count(1) == 3
    assert {r["attempts"] for r in cancelled} == {0, 1}


async def test_stop_without_cancelled_records_for_resume(servers: ServerThread) -> None:
    """With emit_cancelled off, interrupted requests leave no record at all."""
    config = Config(concurrency=2, retries=0)
    engine = Engine(config, RunLimits(emit_cancelled=False))
    urls = [f"{servers.base}/hang"] * 2
    asyncio.get_running_loop().call_later(0.2, engine.stop)
    records = [result async for result in engine.results(specs(urls, config))]
    assert records == []


async def test_an_async_request_source_works(servers: ServerThread) -> None:
    """stream() accepts async iterables of URLs."""

    async def source() -> AsyncIterator[str]:
        for _ in range(3):
            yield f"{servers.base}/ok"

    results = [result async for result in afetch.stream(source())]
    assert sorted(result.index for result in results) == [0, 1, 2]


async def test_closing_a_stream_early_closes_its_connections(servers: ServerThread) -> None:
    """aclosing(afetch.stream(...)): requests still in flight are hung up on at once."""
    state = servers.state
    requests = [f"{servers.base}/ok", *[f"{servers.base}/count/closed-early?s=20"] * 3]
    async with contextlib.aclosing(afetch.stream(requests, Config(concurrency=4))) as results:
        async for result in results:
            assert result.ok
            await _until(lambda: state.inflight["closed-early"] == 3)  # all three in flight
            break
    # Blocking wait: this loop runs nothing meanwhile, so whatever closes the
    # connections must have happened inside aclosing, not in a task left behind.
    for _ in range(100):
        if state.inflight["closed-early"] == 0:
            break
        time.sleep(0.05)  # noqa: ASYNC251
    assert state.hits["closed-early"] == 3
    assert state.inflight["closed-early"] == 0  # the server saw every connection close


async def _until(condition: Callable[[], bool], seconds: float = 5) -> None:
    """Poll a condition the test server's thread changes (it has no event to await)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)


# -- supervision: a failing input never hangs the run -------------------------------


@pytest.mark.timeout(20)
async def test_fetch_all_takes_mappings_like_json_lines(servers: ServerThread) -> None:
    """fetch_all takes mappings shaped like JSON lines."""
    results = await afetch.fetch_all([{"url": f"{servers.base}/ok"}, f"{servers.base}/ok"])
    assert [r.status for r in results] == [200, 200]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fail_at", [0, 1000])
@pytest.mark.parametrize("workers", [1, 2])
async def test_a_source_that_raises_ends_the_run_after_the_finished_records(
    servers: ServerThread, fail_at: int, workers: int
) -> None:
    """With either scheduler: the records so far, then the input's own exception."""

    def source() -> Iterator[str]:
        for i in range(fail_at):
            yield f"{servers.base}/ok?i={i}"
        raise OSError("the input went away")

    got: list[FetchResult] = []

    async def run() -> None:
        async for result in afetch.stream(source(), Config(concurrency=50), workers=workers):
            got.append(result)

    with pytest.raises(OSError, match="the input went away"):
        await run()
    assert sorted(r.index for r in got) == list(range(fail_at))
    assert all(r.ok for r in got)


@pytest.mark.timeout(20)
@transport_free
async def test_a_request_of_an_unknown_type_is_a_type_error_not_a_hang(
    servers: ServerThread,
) -> None:
    """A request of an unknown type is a TypeError, never a hang."""
    with pytest.raises(TypeError, match="not int"):
        await afetch.fetch_all([f"{servers.base}/ok", 5])  # type: ignore[list-item]


@pytest.mark.timeout(20)
@transport_free
async def test_two_specs_with_one_index_are_refused(servers: ServerThread) -> None:
    """Two FetchSpecs with one index are a ValueError."""
    url = f"{servers.base}/ok"
    spec = FetchSpec(0, url, URL(url))
    with pytest.raises(ValueError, match="index 0"):
        await afetch.fetch_all([spec, spec])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("workers", [1, 2])
async def test_the_library_expresses_every_run_the_cli_makes(
    servers: ServerThread, workers: int
) -> None:
    """ordered, workers, deadline and emit_cancelled through afetch.stream, as the CLI uses them."""
    urls = [f"{servers.base}/slow?s={0.3 if i % 2 else 0.01}&i={i}" for i in range(10)]
    ordered = afetch.stream(urls, Config(concurrency=4), ordered=True, workers=workers)
    assert [r.index async for r in ordered] == list(range(10))
    assert ordered.stop_reason is None
    assert ordered.unfinished == 0

    hanging = [f"{servers.base}/slow?s=30&i={i}" for i in range(3)]
    cut = afetch.stream(hanging, Config(concurrency=3), deadline=0.3, workers=workers)
    records = [r async for r in cut]
    assert cut.stop_reason is StopReason.DEADLINE
    assert cut.unfinished == 3
    assert sorted(r.index for r in records) == [0, 1, 2]
    assert {r.error.kind for r in records if r.error} == {afetch.ErrorKind.CANCELLED}

    quiet = afetch.stream(hanging, Config(concurrency=3), deadline=0.3, emit_cancelled=False)
    assert [r async for r in quiet] == []
    assert quiet.unfinished == 3


@pytest.mark.timeout(30)
async def test_max_failures_stops_a_library_run(servers: ServerThread) -> None:
    """max_failures stops a library run like --max-failures."""
    urls = [f"{servers.base}/status/500?i={i}" for i in range(50)]
    results = afetch.stream(urls, Config(concurrency=1, retries=0), max_failures=2)
    records = [r async for r in results]
    assert results.stop_reason is StopReason.MAX_FAILURES
    assert 2 <= sum(1 for r in records if r.status == 500) < 10


@pytest.mark.timeout(30)
async def test_a_callers_own_specs_reach_worker_processes(servers: ServerThread) -> None:
    """A caller's own FetchSpecs reach worker processes whole."""
    url = f"{servers.base}/ok"
    specs = [FetchSpec(i, url, URL(url), id=f"s{i}") for i in range(4)]
    results = await afetch.fetch_all(specs, workers=2)
    assert [(r.index, r.id, r.status) for r in results] == [(i, f"s{i}", 200) for i in range(4)]
    with pytest.raises(ValueError, match="index 0"):
        await afetch.fetch_all([specs[0], specs[0]], workers=2)
