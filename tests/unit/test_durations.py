"""Unit tests for durable._foundation.durations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from durable._foundation.durations import parse_duration, to_seconds

HINT = "use seconds as a number, a timedelta, or a string like '500ms'"


# --- accepted forms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, timedelta(0)),
        (1, timedelta(seconds=1)),
        (30, timedelta(seconds=30)),
        (86_400, timedelta(days=1)),
        (0.0, timedelta(0)),
        (-0.0, timedelta(0)),
        (0.5, timedelta(milliseconds=500)),
        (1.25, timedelta(seconds=1, milliseconds=250)),
        (0.000001, timedelta(microseconds=1)),
        (3600.0, timedelta(hours=1)),
    ],
)
def test_numbers_are_seconds(value: float, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "value",
    [timedelta(0), timedelta(microseconds=1), timedelta(days=3, hours=4), timedelta(weeks=520)],
)
def test_timedelta_passes_through(value: timedelta) -> None:
    assert parse_duration(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the documented short forms
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("0s", timedelta(0)),
        ("0ms", timedelta(0)),
        # plain numeric strings are seconds
        ("30", timedelta(seconds=30)),
        ("0", timedelta(0)),
        ("1.5", timedelta(seconds=1.5)),
        (".25", timedelta(milliseconds=250)),
        ("  45  ", timedelta(seconds=45)),
        # decimals
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("0.5s", timedelta(milliseconds=500)),
        (".5m", timedelta(seconds=30)),
        ("2.5d", timedelta(days=2, hours=12)),
        ("1.5ms", timedelta(microseconds=1500)),
        ("0.001s", timedelta(milliseconds=1)),
        # space between number and unit
        ("5 m", timedelta(minutes=5)),
        ("30 s", timedelta(seconds=30)),
        ("2   h", timedelta(hours=2)),
        # compound forms
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        ("1w 1d", timedelta(days=8)),
        ("2 days 12 hours", timedelta(days=2, hours=12)),
        ("1 hour, 30 minutes", timedelta(hours=1, minutes=30)),
        ("1 hour ,30 minutes", timedelta(hours=1, minutes=30)),
        ("1h,30m", timedelta(hours=1, minutes=30)),
        ("1 day, 2 hours, 3 minutes", timedelta(days=1, hours=2, minutes=3)),
        ("1.5h 30m", timedelta(hours=2)),
        ("90m", timedelta(hours=1, minutes=30)),
        ("1h 1h", timedelta(hours=2)),
        ("1hour30mins", timedelta(hours=1, minutes=30)),
        # case and surrounding whitespace
        ("2H", timedelta(hours=2)),
        ("500MS", timedelta(milliseconds=500)),
        ("2 Days 12 Hours", timedelta(days=2, hours=12)),
        ("  5m  ", timedelta(minutes=5)),
        ("\t1h30m\n", timedelta(hours=1, minutes=30)),
    ],
)
def test_strings(value: str, expected: timedelta) -> None:
    assert parse_duration(value) == expected


UNIT_WORDS = {
    timedelta(milliseconds=1): [
        "ms",
        "msec",
        "msecs",
        "millisecond",
        "milliseconds",
    ],
    timedelta(seconds=1): ["s", "sec", "secs", "second", "seconds"],
    timedelta(minutes=1): ["m", "min", "mins", "minute", "minutes"],
    timedelta(hours=1): ["h", "hr", "hrs", "hour", "hours"],
    timedelta(days=1): ["d", "day", "days"],
    timedelta(weeks=1): ["w", "wk", "wks", "week", "weeks"],
}
UNIT_CASES = [(word, unit) for unit, words in UNIT_WORDS.items() for word in words]


@pytest.mark.parametrize(("word", "unit"), UNIT_CASES)
@pytest.mark.parametrize("template", ["3{}", "3 {}", "3{UPPER}", " 3 {} "])
def test_every_unit_word(word: str, unit: timedelta, template: str) -> None:
    text = template.replace("{UPPER}", word.upper()).replace("{}", word)
    assert parse_duration(text) == unit * 3


def test_many_parts() -> None:
    text = " ".join(["1s"] * 1000)
    assert parse_duration(text) == timedelta(seconds=1000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (1.5, 1.5),
        (timedelta(minutes=2), 120.0),
        ("500ms", 0.5),
        ("2 days 12 hours", 216_000.0),
        ("1h30m", 5400.0),
        ("30", 30.0),
    ],
)
def test_to_seconds(value: Any, expected: float) -> None:
    result = to_seconds(value)
    assert type(result) is float
    assert result == expected


def test_return_type_is_timedelta() -> None:
    assert type(parse_duration(5)) is timedelta
    assert type(parse_duration("5s")) is timedelta


# --- rejections -------------------------------------------------------------


def _raises(value: object, reason: str | None = None) -> None:
    pattern = re.escape(f"invalid duration {value!r}")
    if reason is not None:
        pattern += re.escape(f" ({reason})")
    pattern += ".*" + re.escape(HINT)
    with pytest.raises(ValueError, match=pattern):
        parse_duration(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=pattern):
        to_seconds(value)  # type: ignore[arg-type]


def test_message_matches_documented_wording() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("3 fortnights")
    assert str(info.value) == (
        "invalid duration '3 fortnights' (unknown unit 'fortnights'): use seconds as a number, "
        "a timedelta, or a string like '500ms', '30s', '5m', '2h', '3d', '1w', '2 days 12 hours'"
    )


@pytest.mark.parametrize("value", [-1, -0.5, -1e-9, -86_400])
def test_negative_numbers(value: float) -> None:
    _raises(value, "must not be negative")


@pytest.mark.parametrize("value", [timedelta(microseconds=-1), timedelta(days=-1)])
def test_negative_timedelta(value: timedelta) -> None:
    _raises(value, "must not be negative")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers(value: float) -> None:
    _raises(value, "must be finite")


@pytest.mark.parametrize(
    "value",
    ["-5s", "-5", "- 5s", "1h -30m", "-1h30m", "+5s", "+5"],
)
def test_signed_strings(value: str) -> None:
    _raises(value)


@pytest.mark.parametrize(
    "value",
    ["nan", "inf", "-inf", "infinity", "NaN", "nans", "1e3", "1e3s", "0x10", "1_000s"],
)
def test_special_number_strings(value: str) -> None:
    _raises(value)


@pytest.mark.parametrize("value", ["", " ", "   ", "\t\n", ","])
def test_empty_strings(value: str) -> None:
    _raises(value)


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        ("3 fortnights", "fortnights"),
        ("5y", "y"),
        ("2 months", "months"),
        ("10us", "us"),
        ("10ns", "ns"),
        ("1h 30x", "x"),
        ("1 hourz", "hourz"),
        ("5 secondss", "secondss"),
        ("1hm", "hm"),
    ],
)
def test_unknown_units(value: str, unit: str) -> None:
    _raises(value, f"unknown unit {unit!r}")


@pytest.mark.parametrize(
    "value",
    [
        "1h x 30m",
        "1h and 30m",
        "1h; 30m",
        "1h,,30m",
        "1h, ,30m",
        "1h/30m",
        "1h-30m",
        "1h 30",
        "30 1h",
        "1h,",
        ",1h",
        "1h30m!",
        "about 5m",
        "5m later",
        "1.h",
        "1..5h",
        "1.5.2h",
        "1 .5h",
        "5 5s",
        "5m\x005s",
        "1h_30m",
    ],
)
def test_garbage_between_parts(value: str) -> None:
    _raises(value)


@pytest.mark.parametrize("value", ["h", "ms", "s", "hours", "m 5", "h30m", "1h m", "."])
def test_unit_without_number(value: str) -> None:
    _raises(value)


@pytest.mark.parametrize(
    "value",
    ["\u0665s", "\uff15m", "\u0665", "5\u00a0m"],  # non-ASCII digits / non-breaking space
)
def test_non_ascii_rejected(value: str) -> None:
    _raises(value)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (None, "NoneType"),
        ([], "list"),
        ([5], "list"),
        ((5,), "tuple"),
        ({"seconds": 5}, "dict"),
        (b"5s", "bytes"),
        (object(), "object"),
        (1 + 2j, "complex"),
        (True, "bool"),
        (False, "bool"),
    ],
)
def test_wrong_types(value: object, type_name: str) -> None:
    _raises(value, f"unsupported type {type_name}")


@pytest.mark.parametrize(
    "value",
    [
        10**20,
        10**400,
        1e300,
        "9" * 20 + "d",
        "9" * 400,
        "9" * 400 + "s",
        "99999999999w",
        "999999999d 999999999d",
    ],
)
def test_too_large(value: object) -> None:
    _raises(value, "too large")


@pytest.mark.timeout(10)  # catastrophic backtracking would take far longer
def test_pathological_input_is_refused() -> None:
    value = "1h   " * 200 + "x"
    _raises(value)
