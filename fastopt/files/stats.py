"""`strategies/<name>/stats.json`: a strategy's backtest, as daily returns.

The file is a JSON object. ``daily_returns`` holds one *simple* return per
calendar day as a **fraction** (0.01 = +1 %), in one of three accepted shapes::

    {"daily_dates": ["2024-01-01", "2024-01-02"], "daily_returns": [0.01, -0.002]}
    {"daily_returns": {"2024-01-01": 0.01, "2024-01-02": -0.002}}
    {"daily_returns": [{"date": "2024-01-01", "return": 0.01}, ...]}

Every other key (``strategy``, ``symbol``, ``interval``, ``start``, ``end``,
``"Total Return [%]"``, ``"Sharpe Ratio"``, ``"Max Drawdown [%]"``, ...) is kept
as metadata. Dates are ``YYYY-MM-DD`` (UTC calendar days); they may be given in
any order (they are sorted on read) but never twice. Gaps are allowed (the
loader treats a missing day inside the history as a 0 return).

Refused, with the reason: invalid JSON, NaN/Infinity, a non-object top level,
missing/mistyped ``daily_returns``/``daily_dates``, a non-number or boolean
return, a return <= -1 (a loss of 100 % or more), an unparseable or duplicate
date, lists of different lengths, an empty series. A return with ``|r| > 1`` is
accepted with a warning (the file may be in percent instead of fractions).
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
from numpy.typing import ArrayLike, NDArray

from fastopt import metrics
from fastopt.files.atomic import atomic_write_json
from fastopt.errors import InputError

#: The keys that carry the series; everything else is metadata.
SERIES_KEYS = ("daily_dates", "daily_returns")
#: Accepted ``shape`` values of :func:`write_stats` (see the module docstring).
SHAPES = ("lists", "mapping", "records")
_NUMBER_TYPES = (float, int)
_NUMBER_TYPE_SET = {float, int}
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class StatsSeries:
    """A validated stats.json.

    ``dates``: sorted unique ``datetime64[D]`` (T); ``returns``: float64 (T), simple
    daily returns as fractions aligned with ``dates``; ``metadata``: every other
    key of the file; ``warnings``: non-fatal remarks (e.g. values that look like percent).
    """

    dates: NDArray[np.datetime64]
    returns: NDArray[np.float64]
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def first_date(self) -> np.datetime64:
        return self.dates[0]

    @property
    def last_date(self) -> np.datetime64:
        return self.dates[-1]


# --------------------------------------------------------------------------- parsing


def _parse_dates(raw: Sequence[Any], where: str) -> NDArray[np.datetime64]:
    """Strict ``YYYY-MM-DD`` strings -> datetime64[D]; ValueError naming the first bad one."""
    fast = _fast_days(raw, len(raw))
    if fast is not None:
        return fast
    # Slow path, only to name the first offending entry precisely.
    for index, value in enumerate(raw):
        if not isinstance(value, str):
            raise ValueError(f"{where}[{index}] must be a 'YYYY-MM-DD' string, got {type(value).__name__}")
        if not _is_iso_day(value):
            raise ValueError(f"{where}[{index}] = {value!r} is not a valid 'YYYY-MM-DD' date")
    return np.array(raw, dtype="datetime64[D]")


_DIGIT_COLUMNS = np.array([0, 1, 2, 3, 5, 6, 8, 9])
_SEPARATOR_COLUMNS = np.array([4, 7, 10])
_SEPARATORS = np.array([ord("-"), ord("-"), ord("|")], dtype=np.uint8)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
_TABLE_FIRST_YEAR = 1900
_TABLE_MONTHS = np.arange(np.datetime64("1900-01", "M"), np.datetime64("2200-01", "M"))
#: Days since 1970-01-01 of each month's first day, and each month's length, 1900-01..2199-12.
_MONTH_START = _TABLE_MONTHS.astype("datetime64[D]").astype(np.int64)
_MONTH_LENGTH = ((_TABLE_MONTHS + 1).astype("datetime64[D]").astype(np.int64) - _MONTH_START).astype(np.int32)


def _fast_days(raw: Iterable[Any], count: int) -> NDArray[np.datetime64] | None:
    """Vectorized strict parse; None when anything is off (the slow path then explains).

    The entries are joined with ``|`` (a TypeError if one is not a string) and
    read as an ``n x 11`` byte matrix: every row must be ``dddd-dd-dd|``. Since
    only digits and dashes may sit between separators, each row is exactly one
    entry. The calendar check rejects months outside 1..12 and days past the end
    of their month.
    """
    try:
        joined = ("|".join(raw) + "|").encode("ascii")
    except (TypeError, UnicodeEncodeError):
        return None
    if len(joined) != 11 * count:
        return None
    rows = np.frombuffer(joined, dtype=np.uint8).reshape(count, 11)
    digits = rows[:, _DIGIT_COLUMNS] - np.uint8(48)  # uint8: anything below '0' wraps above 9
    if not ((digits <= 9).all() and (rows[:, _SEPARATOR_COLUMNS] == _SEPARATORS).all()):
        return None
    d = digits.astype(np.int32)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    if not ((month >= 1) & (month <= 12) & (day >= 1)).all():
        return None
    month_index = (year - _TABLE_FIRST_YEAR) * 12 + (month - 1)
    if (month_index >= 0).all() and (month_index < _MONTH_START.size).all():
        # Common case: a precomputed table of month starts / lengths (1900..2199).
        if (day > _MONTH_LENGTH[month_index]).any():
            return None
        return (_MONTH_START[month_index] + (day - 1)).astype("datetime64[D]")
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    if (day > _MONTH_DAYS[month] + (leap & (month == 2))).any():
        return None
    return _days_from_civil(year, month, day).astype("datetime64[D]")


def _days_from_civil(year: NDArray[np.int32], month: NDArray[np.int32], day: NDArray[np.int32]) -> NDArray[np.int64]:
    """Days since 1970-01-01 of proleptic Gregorian dates (integer arithmetic, vectorized)."""
    shifted_year = (year - (month <= 2)).astype(np.int64)
    era = shifted_year // 400
    year_of_era = shifted_year - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _is_iso_day(text: str) -> bool:
    if not _ISO_DAY.fullmatch(text):
        return False
    try:
        return np.datetime_as_string(np.datetime64(text, "D"), unit="D") == text
    except ValueError:
        return False


def _parse_returns(raw: Sequence[Any], where: str) -> NDArray[np.float64]:
    """Numbers (not booleans, not null, not strings) -> float64; ValueError naming the first bad one."""
    if not set(map(type, raw)) <= _NUMBER_TYPE_SET:
        for index, value in enumerate(raw):
            if type(value) not in _NUMBER_TYPES:
                kind = "null" if value is None else type(value).__name__
                raise ValueError(f"{where}[{index}] must be a number, got {kind}")
    values = np.array(raw, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        index = int(np.argmin(finite))
        raise ValueError(f"{where}[{index}] is not finite ({raw[index]!r})")
    return values


def _series_from(data: Mapping[str, Any]) -> tuple[list[Any], list[Any], str, str]:
    """Pull (raw dates, raw returns, dates label, returns label) out of any accepted shape."""
    if "daily_returns" not in data:
        raise ValueError("no 'daily_returns' key (expected the daily return series)")
    raw = data["daily_returns"]
    if isinstance(raw, list):
        if raw and isinstance(raw[0], dict):
            dates: list[Any] = []
            rets: list[Any] = []
            for i, row in enumerate(raw):
                if not isinstance(row, dict) or "date" not in row or "return" not in row:
                    raise ValueError(f"daily_returns[{i}] must be an object with 'date' and 'return'")
                dates.append(row["date"])
                rets.append(row["return"])
            if "daily_dates" in data:
                raise ValueError("'daily_dates' given together with dated daily_returns records")
            return dates, rets, "daily_returns[].date", "daily_returns[].return"
        if "daily_dates" not in data:
            raise ValueError("'daily_returns' is a list but 'daily_dates' is missing")
        dates_raw = data["daily_dates"]
        if not isinstance(dates_raw, list):
            raise ValueError(f"'daily_dates' must be a list, got {type(dates_raw).__name__}")
        if len(dates_raw) != len(raw):
            raise ValueError(
                f"'daily_dates' has {len(dates_raw)} entries but 'daily_returns' has {len(raw)}"
            )
        return dates_raw, raw, "daily_dates", "daily_returns"
    if isinstance(raw, dict):
        if "daily_dates" in data:
            raise ValueError("'daily_dates' given together with a daily_returns date -> return object")
        return list(raw.keys()), list(raw.values()), "daily_returns key", "daily_returns"
    raise ValueError(
        f"'daily_returns' must be a list or an object of date -> return, got {type(raw).__name__}"
    )


@dataclass(frozen=True)
class _RawSeries:
    """A structurally valid stats.json object whose entries are not yet type-checked."""

    dates: list[Any]
    returns: list[Any]
    dates_label: str
    returns_label: str
    metadata: dict[str, Any]


def _structure(data: Any) -> _RawSeries:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    raw_dates, raw_returns, dates_label, returns_label = _series_from(data)
    if not raw_returns:
        raise ValueError("empty series: 'daily_returns' has no entries")
    metadata = {k: v for k, v in data.items() if k not in SERIES_KEYS}
    return _RawSeries(raw_dates, raw_returns, dates_label, returns_label, metadata)


def _finish(raw: _RawSeries, dates: NDArray[np.datetime64], returns: NDArray[np.float64]) -> StatsSeries:
    """Order, uniqueness, range checks and warnings on parsed arrays."""
    if dates.size > 1 and not (dates[1:] > dates[:-1]).all():
        order = np.argsort(dates, kind="stable")
        dates = dates[order]
        returns = returns[order]
        same = dates[1:] == dates[:-1]
        if same.any():
            day = np.datetime_as_string(dates[int(np.argmax(same))], unit="D")
            raise ValueError(f"duplicate date {day} in {raw.dates_label}")
    low = returns <= -1.0
    if low.any():
        index = int(np.argmax(low))
        day = np.datetime_as_string(dates[index], unit="D")
        raise ValueError(
            f"return {returns[index]!r} on {day} is <= -1 (a loss of 100 % or more is impossible "
            "for a simple return as a fraction)"
        )
    warnings: list[str] = []
    big = np.abs(returns) > 1.0
    if big.any():
        index = int(np.argmax(big))
        day = np.datetime_as_string(dates[index], unit="D")
        warnings.append(
            f"{int(big.sum())} daily return(s) with |r| > 1 (first {returns[index]!r} on {day}): "
            "returns may be in percent instead of fractions"
        )
    return StatsSeries(dates=dates, returns=returns, metadata=raw.metadata, warnings=tuple(warnings))


def parse_stats(data: Any) -> StatsSeries:
    """Validate a decoded stats.json object. Raises ValueError with a precise reason."""
    return parse_stats_raw(_structure(data))


def _decode(content: bytes | str) -> Any:
    if not content.strip():
        raise ValueError("empty file (half-written?)")
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None


def loads_stats(content: bytes | str) -> StatsSeries:
    """Decode and validate stats.json text (strict JSON: NaN/Infinity refused). ValueError on failure."""
    return parse_stats(_decode(content))


def loads_many(contents: Iterable[bytes | bytearray | str]) -> list[StatsSeries | ValueError]:
    """:func:`loads_stats` on many files at once: same results, batched and vectorized.

    Each item of the result is the parsed series or the ValueError explaining why
    that file is refused. Files in the common layout (``daily_dates`` as
    consecutive calendar days, see :class:`StatsBatch`) never have their date
    strings decoded one by one; every other file goes through one vectorized
    pass over all its entries. Whenever anything looks wrong, the affected file
    is parsed on its own, so every reason is exactly the one :func:`loads_stats` gives.
    """
    batch = StatsBatch()
    for content in contents:
        batch.add(content)
    return batch.finish()


# --------------------------------------------------------------------------- fast path: spliced files
#
# A file whose ``daily_dates`` are consecutive calendar days is by far the common
# case (every backtest writes one return per day). For such a file the two big
# arrays are cut out of the raw bytes and replaced by two marker strings; orjson
# parses the small rest (metadata, and it checks the whole syntax around the
# arrays), orjson parses the returns array alone, and the dates array is checked
# by comparing its bytes with the bytes the consecutive days must have. Why this
# is exact: the markers occur nowhere else in the spliced text (counted), so when
# the parsed rest holds each marker as the value of its top-level key, each
# marker is a complete JSON value token at that key's value position; putting a
# valid JSON array back there gives the original text, which therefore parses to
# the same object with the arrays in place. Any doubt (other layout, other
# separators, gaps, a bad token...) sends the file to the generic path.

_JSON_WHITESPACE = b" \t\r\n"
_MARKER_TAG = b"__fastopt_spliced_"
_DATES_MARKER = "__fastopt_spliced_daily_dates__"
_RETURNS_MARKER = "__fastopt_spliced_daily_returns__"
_MARKER_BYTES = {"dates": b'"' + _DATES_MARKER.encode() + b'"', "returns": b'"' + _RETURNS_MARKER.encode() + b'"'}
_DATES_KEY = b'"daily_dates"'
_RETURNS_KEY = b'"daily_returns"'
_COLON, _OPEN = ord(":"), ord("[")
#: Day numbers (since 1970-01-01) of 0000-01-01 and of the day after 9999-12-31: 'YYYY-MM-DD' spans.
_FIRST_4_DIGIT_DAY = int(np.datetime64("0000-01-01", "D").astype(np.int64))
_END_4_DIGIT_DAY = int(np.datetime64("10000-01-01", "D").astype(np.int64))
_ORDINAL_1970 = 719_163  # datetime.date(1970, 1, 1).toordinal()


class _Spliced(NamedTuple):
    """A lists-shape file cut apart by :func:`_splice`; dates not yet checked."""

    metadata: dict[str, Any]
    returns: NDArray[np.float64]
    first_quote: int  # index of the first date's opening quote
    dates_close: int  # index of the dates array's ']'
    separator: bytes  # bytes between two date strings (',' with optional whitespace)
    first_day: int  # day number of the first date (days since 1970-01-01)


def _skip_whitespace(content: bytes | bytearray, index: int) -> int:
    size = len(content)
    while index < size and content[index] in _JSON_WHITESPACE:
        index += 1
    return index


def _array_span(content: bytes | bytearray, key: bytes) -> tuple[int, int] | None:
    """(index of '[', index of the first ']' after it) of the first ``key : [`` in content."""
    at = content.find(key)
    while at >= 0:
        index = _skip_whitespace(content, at + len(key))
        if index < len(content) and content[index] == _COLON:
            index = _skip_whitespace(content, index + 1)
            if index < len(content) and content[index] == _OPEN:
                close = content.find(b"]", index)
                return None if close < 0 else (index, close)
        at = content.find(key, at + len(key))
    return None


def _day_number(text: bytes | bytearray) -> int | None:
    """Day number of a strict ASCII 'YYYY-MM-DD' (years 0001..9999), else None."""
    if len(text) != 10 or text[4] != 45 or text[7] != 45:  # '-'
        return None
    digits = text[:4] + text[5:7] + text[8:]
    if not digits.isdigit():  # bytes.isdigit: ASCII digits only
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).toordinal() - _ORDINAL_1970
    except ValueError:
        return None


def _splice(content: bytes | bytearray) -> _Spliced | None:
    """Cut a lists-shape stats.json apart (see the comment above); None: use the generic path."""
    dates_span = _array_span(content, _DATES_KEY)
    returns_span = _array_span(content, _RETURNS_KEY)
    if dates_span is None or returns_span is None:
        return None
    (d_open, d_close), (r_open, r_close) = dates_span, returns_span
    # Only numbers may be in the returns array: no string ('"'), true/null ('u'), false ('a').
    if content.find(b'"', r_open, r_close) >= 0 or content.find(b"u", r_open, r_close) >= 0 \
            or content.find(b"a", r_open, r_close) >= 0:
        return None
    markers = {d_open: _MARKER_BYTES["dates"], r_open: _MARKER_BYTES["returns"]}
    first, second = sorted([(d_open, d_close), (r_open, r_close)])
    if first[1] >= second[0]:
        return None
    rest = b"".join([content[:first[0]], markers[first[0]], content[first[1] + 1:second[0]],
                     markers[second[0]], content[second[1] + 1:]])
    if rest.count(_MARKER_TAG) != 2:
        return None
    try:
        data = orjson.loads(rest)
        returns = orjson.loads(memoryview(content)[r_open:r_close + 1])
    except orjson.JSONDecodeError:
        return None
    if (type(data) is not dict or data.get("daily_dates") != _DATES_MARKER
            or data.get("daily_returns") != _RETURNS_MARKER or not returns):
        return None
    try:  # numbers (int or float), or nested arrays / objects: refused by a TypeError / ValueError
        values = np.fromiter(returns, dtype=np.float64, count=len(returns))
    except (TypeError, ValueError):
        return None
    first_quote = _skip_whitespace(content, d_open + 1)
    if content[first_quote:first_quote + 1] != b'"' or content[first_quote + 11:first_quote + 12] != b'"':
        return None
    separator = b","
    if values.size > 1:
        next_quote = content.find(b'"', first_quote + 12, d_close)
        if next_quote < 0:
            return None
        separator = bytes(content[first_quote + 12:next_quote])
        if separator.translate(None, _JSON_WHITESPACE) != b",":
            return None
    first_day = _day_number(content[first_quote + 1:first_quote + 11])
    if first_day is None:
        return None
    metadata = {k: v for k, v in data.items() if k not in SERIES_KEYS}
    return _Spliced(metadata, values, first_quote, d_close, separator, first_day)


class StatsBatch:
    """Parses many stats.json contents as they come (:func:`loads_many` in steps).

    ``add(content)`` takes each file's bytes in order; a file on the fast path is
    fully checked at once and its bytes are not kept (the caller may reuse its
    buffer); other files are copied and parsed together by ``finish()``, which
    returns one result per added file, in order (a StatsSeries or the ValueError).
    """

    def __init__(self) -> None:
        self._count = 0
        self._fast: list[tuple[int, _Spliced]] = []
        self._generic: list[tuple[int, bytes | str]] = []
        self._calendars: dict[bytes, tuple[int, int, bytes]] = {}  # separator -> (first day, end day, bytes)

    def _calendar(self, separator: bytes, first_day: int, end_day: int) -> tuple[int, bytes] | None:
        """(first day, joined quoted days) covering [first_day, end_day) with this separator."""
        low, high, joined = self._calendars.get(separator, (first_day, first_day, b""))
        if low <= first_day and end_day <= high and joined:
            return low, joined
        if end_day > _END_4_DIGIT_DAY or first_day < _FIRST_4_DIGIT_DAY:
            return None
        if joined:  # grow at least twofold, so that few rebuilds ever happen
            span = high - low
            if first_day < low:
                low = max(_FIRST_4_DIGIT_DAY, min(first_day, low - span))
            if end_day > high:
                high = min(_END_4_DIGIT_DAY, max(end_day, high + span))
        else:
            low, high = first_day, end_day
        days = np.arange(low, high, dtype=np.int64).astype("datetime64[D]")
        quoted = [b'"' + s.encode("ascii") + b'"' for s in np.datetime_as_string(days, unit="D").tolist()]
        joined = separator.join(quoted) + separator
        self._calendars[separator] = (low, high, joined)
        return low, joined

    def _dates_are_consecutive(self, content: bytes | bytearray, piece: _Spliced) -> bool:
        n_days = piece.returns.size
        found = self._calendar(piece.separator, piece.first_day, piece.first_day + n_days)
        if found is None:
            return False
        low, joined = found
        stride = 12 + len(piece.separator)
        offset = piece.first_day - low
        expected = joined[offset * stride:(offset + n_days) * stride - len(piece.separator)]
        end = piece.first_quote + len(expected)
        return content.startswith(expected, piece.first_quote) and not content[end:piece.dates_close].strip(
            _JSON_WHITESPACE)

    def add(self, content: bytes | bytearray | str) -> None:
        index = self._count
        self._count += 1
        if not isinstance(content, str):
            piece = _splice(content)
            if piece is not None and self._dates_are_consecutive(content, piece):
                self._fast.append((index, piece))
                return
            content = bytes(content)
        self._generic.append((index, content))

    def finish(self) -> list[StatsSeries | ValueError]:
        results: list[StatsSeries | ValueError] = [ValueError("not parsed")] * self._count
        _finish_spliced(self._fast, results)
        _loads_generic(self._generic, results)
        return results


def _finish_spliced(spliced: list[tuple[int, _Spliced]], results: list[StatsSeries | ValueError]) -> None:
    """Range checks and warnings of the spliced files (dates already checked); fills ``results``."""
    if not spliced:
        return
    lengths = np.fromiter((piece.returns.size for _, piece in spliced), dtype=np.int64, count=len(spliced))
    start = np.fromiter((piece.first_day for _, piece in spliced), dtype=np.int64, count=len(spliced))
    total = int(lengths.sum())
    returns = np.concatenate([piece.returns for _, piece in spliced])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    dates = (np.arange(total, dtype=np.int64) + np.repeat(start - bounds[:-1], lengths)).astype("datetime64[D]")
    # Always finite (orjson refuses NaN/Infinity): a file needs a closer look only when some
    # return is <= -1 or > 1 in size, i.e. its minimum is <= -1 or its maximum > 1.
    flagged = (np.minimum.reduceat(returns, bounds[:-1]) <= -1.0) | (np.maximum.reduceat(returns, bounds[:-1]) > 1.0)
    for k, (i, piece) in enumerate(spliced):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if not flagged[k]:
            results[i] = StatsSeries(dates=dates[lo:hi], returns=returns[lo:hi], metadata=piece.metadata)
            continue
        raw = _RawSeries([], [], "daily_dates", "daily_returns", piece.metadata)
        try:
            results[i] = _finish(raw, dates[lo:hi], returns[lo:hi])
        except ValueError as exc:
            results[i] = exc


def _loads_generic(items: list[tuple[int, bytes | str]], results: list[StatsSeries | ValueError]) -> None:
    """Batched parse of any accepted shape: one vectorized pass over all entries; fills ``results``."""
    pending: list[tuple[int, _RawSeries]] = []
    for i, content in items:
        try:
            pending.append((i, _structure(_decode(content))))
        except ValueError as exc:
            results[i] = exc
    if not pending:
        return
    lengths = np.fromiter((len(raw.returns) for _, raw in pending), dtype=np.int64, count=len(pending))
    total = int(lengths.sum())
    dates = _fast_days(chain.from_iterable(raw.dates for _, raw in pending), total)
    returns = None
    if set(map(type, chain.from_iterable(raw.returns for _, raw in pending))) <= _NUMBER_TYPE_SET:
        returns = np.fromiter(
            chain.from_iterable(raw.returns for _, raw in pending), dtype=np.float64, count=total
        )
    if dates is None or returns is None:
        for i, raw in pending:  # something is off somewhere: per file, for the exact reasons
            try:
                results[i] = parse_stats_raw(raw)
            except ValueError as exc:
                results[i] = exc
        return
    # Per-file flags computed in bulk: a file needs the per-file path only when one of its
    # entries is non-finite, <= -1 or > 1 in size, or its dates are not strictly increasing.
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    suspicious = ~np.isfinite(returns) | (np.abs(returns) > 1.0) | (returns <= -1.0)
    not_increasing = np.zeros(total, dtype=bool)
    not_increasing[1:] = dates[1:] <= dates[:-1]
    not_increasing[bounds[:-1]] = False  # a file's first entry has no predecessor in that file
    flagged = np.add.reduceat((suspicious | not_increasing).astype(np.int64), bounds[:-1]) > 0
    for k, (i, raw) in enumerate(pending):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if not flagged[k]:
            results[i] = StatsSeries(dates=dates[lo:hi], returns=returns[lo:hi], metadata=raw.metadata)
            continue
        try:
            if not np.isfinite(returns[lo:hi]).all():
                results[i] = parse_stats_raw(raw)  # raises with the exact entry
            else:
                results[i] = _finish(raw, dates[lo:hi], returns[lo:hi])
        except ValueError as exc:
            results[i] = exc




def parse_stats_raw(raw: _RawSeries) -> StatsSeries:
    """Entry-by-entry validation of a structurally valid object (the per-file path)."""
    returns = _parse_returns(raw.returns, raw.returns_label)
    dates = _parse_dates(raw.dates, raw.dates_label)
    return _finish(raw, dates, returns)


def read_stats(path: str | os.PathLike[str]) -> StatsSeries:
    """Read and validate one stats.json; InputError naming the file and the reason."""
    try:
        content = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("stats file not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        return loads_stats(content)
    except ValueError as exc:
        raise InputError(str(exc), path=path) from None


# --------------------------------------------------------------------------- writing


def _round_metric(value: float, digits: int) -> float:
    return round(float(value), digits) if math.isfinite(value) else 0.0


def summary_keys(returns: ArrayLike, *, periods_per_year: float = 365) -> dict[str, float]:
    """The human-readable summary keys BlaveClaw users expect, in percent where the key says [%]."""
    stats = metrics.summary(np.asarray(returns, dtype=np.float64), periods_per_year)
    return {
        "Total Return [%]": _round_metric(stats["total_return"] * 100.0, 4),
        "Annual Return [%]": _round_metric(stats["cagr"] * 100.0, 4),
        "Annual Volatility [%]": _round_metric(stats["ann_vol"] * 100.0, 4),
        "Sharpe Ratio": _round_metric(stats["sharpe"], 4),
        "Sortino Ratio": _round_metric(stats["sortino"], 4),
        "Max Drawdown [%]": _round_metric(stats["max_drawdown"] * 100.0, 4),
        "Win Rate [%]": _round_metric(stats["win_rate"] * 100.0, 4),
    }


def build_stats(
    *,
    strategy: str,
    symbol: str | None,
    dates: ArrayLike,
    returns: ArrayLike,
    shape: str = "lists",
    with_metrics: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Build (and validate) the stats.json object without writing it (pure).

    ``dates``: anything numpy turns into ``datetime64[D]`` (ISO strings, dates,
    datetime64); ``returns``: simple daily returns as fractions, same length.
    ``shape`` picks the ``daily_returns`` layout: ``"lists"`` (daily_dates +
    daily_returns lists, the default), ``"mapping"`` or ``"records"``.
    Keys in ``extra`` are written as-is after the computed summary keys (so they
    override them). Raises ValueError if the result would not parse back.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    day_array = np.asarray(dates, dtype="datetime64[D]").reshape(-1)
    values = np.asarray(returns, dtype=np.float64).reshape(-1)
    if day_array.shape != values.shape:
        raise ValueError(f"{day_array.size} dates but {values.size} returns")
    if values.size == 0:
        raise ValueError("empty series: no returns to write")
    day_strings = [str(d) for d in np.datetime_as_string(day_array, unit="D")]
    return_list = [float(v) for v in values]
    obj: dict[str, Any] = {"strategy": strategy, "symbol": symbol}
    obj["start"] = min(day_strings)
    obj["end"] = max(day_strings)
    if with_metrics and np.isfinite(values).all():
        order = np.argsort(day_array, kind="stable")
        obj.update(summary_keys(values[order]))
    obj.update(extra)
    for key in SERIES_KEYS:
        obj.pop(key, None)
    if shape == "lists":
        obj["daily_dates"] = day_strings
        obj["daily_returns"] = return_list
    elif shape == "mapping":
        obj["daily_returns"] = dict(zip(day_strings, return_list))
        if len(obj["daily_returns"]) != len(day_strings):
            raise ValueError("duplicate dates")
    else:
        obj["daily_returns"] = [{"date": d, "return": r} for d, r in zip(day_strings, return_list)]
    parse_stats(obj)
    return obj


def write_stats(
    path: str | os.PathLike[str],
    *,
    strategy: str,
    symbol: str | None,
    dates: ArrayLike,
    returns: ArrayLike,
    shape: str = "lists",
    with_metrics: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Validate then atomically write a stats.json; returns the object written.

    See :func:`build_stats` for the arguments. Nothing is written (and an
    existing file is left untouched) when validation or serialization fails.
    """
    obj = build_stats(
        strategy=strategy,
        symbol=symbol,
        dates=dates,
        returns=returns,
        shape=shape,
        with_metrics=with_metrics,
        **extra,
    )
    atomic_write_json(path, obj)
    return obj
