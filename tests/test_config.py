"""Units of SPEC §1: durations, sizes, rates and headers."""

from __future__ import annotations

import pytest

from afetch.config import Config, parse_duration, parse_header, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5", 5.0), ("250ms", 0.25), ("1.5s", 1.5), ("2m", 120.0), ("1h", 3600.0), (".5", 0.5)],
)
def test_durations_parse_with_every_suffix(text: str, seconds: float) -> None:
    """Each duration suffix scales the number."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("1K", 1024),
        ("1KiB", 1024),
        ("10MiB", 10 * 1024**2),
        ("1G", 1024**3),
        ("1KB", 1000),
        ("2MB", 2_000_000),
        ("1gb", 10**9),
    ],
)
def test_sizes_use_base_1024_for_binary_and_1000_for_decimal(text: str, size: int) -> None:
    """KiB/K are powers of 1024, KB powers of 1000."""
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "rate"), [("10/s", 10.0), ("600/m", 10.0), ("3600/h", 1.0)])
def test_rates_convert_to_per_second(text: str, rate: float) -> None:
    """N/s, N/m and N/h all become requests per second."""
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_duration, "fast"),
        (parse_duration, "-1s"),
        (parse_size, "10XB"),
        (parse_rate, "10"),
        (parse_rate, "0/s"),
        (parse_header, "no colon"),
        (parse_header, "X-A: b\r\nX-Evil: 1"),
        (parse_header, "Bad Name: v"),
    ],
)
def test_bad_values_raise_value_error(parse: object, text: str) -> None:
    """Bad values are ValueErrors with a message (the CLI turns them into usage errors)."""
    with pytest.raises(ValueError, match=r"."):
        parse(text)  # type: ignore[operator]


def test_header_value_is_trimmed() -> None:
    """'Name:  value ' keeps the name and the trimmed value."""
    assert parse_header("X-Token:  abc ") == ("X-Token", "abc")


@pytest.mark.parametrize(
    "kwargs",
    [{"concurrency": 0}, {"timeout": 0}, {"retries": -1}, {"default_scheme": "ftp"}],
)
def test_config_refuses_impossible_values(kwargs: dict[str, object]) -> None:
    """A Config cannot be built with values the engine cannot honour."""
    with pytest.raises(ValueError, match=r"."):
        Config(**kwargs)  # type: ignore[arg-type]
