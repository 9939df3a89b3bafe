"""Cursors of the cache feeds (tables/deptrans/cursor.py): what a cursor holds, which
cursors are refused, and paging that never skips or repeats a change, whatever the limits,
the appends between pages, a lagging worker or compaction."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.deptrans.cursor import MAX_CURSOR_CHARS, Change, InvalidCursor, Page, decode_cursor, encode_cursor, page

FEED = "status"


def log(partition: int, *offsets: int) -> list[Change]:
    return [Change(partition, o, f"k{partition}-{o}", {"o": o}) for o in offsets]


def raw_cursor(body: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()


# --- the cursor ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("positions", [{}, {0: 5}, {0: 5, 3: 0, 7: 2**40}, {i: i * 1000 for i in range(64)}],
                         ids=["beginning", "one-partition", "zero-and-large", "sixty-four-partitions"])
def test_a_cursor_reads_back_as_its_positions(positions) -> None:
    cursor = encode_cursor(positions, FEED)
    assert decode_cursor(cursor, FEED) == {p: o for p, o in positions.items() if o}
    assert all(c.isalnum() or c in "-_" for c in cursor)  # URL-safe as it is


@pytest.mark.parametrize("cursor", [None, ""], ids=["none", "empty"])
def test_no_cursor_is_the_beginning(cursor) -> None:
    assert decode_cursor(cursor, FEED) == {}


@pytest.mark.parametrize("cursor, why", [
    ("abc+/==", "not base64url"),
    ("a b", "not base64url"),
    ("x" * (MAX_CURSOR_CHARS + 1), "longer than"),
    ("a", "undecodable"),
    (base64.urlsafe_b64encode(b"not json").decode().rstrip("="), "undecodable"),
    (raw_cursor([1, 2]), "unknown form"),
    (raw_cursor({"v": 2, "f": FEED, "p": {}}), "unknown form or version"),
    (raw_cursor({"v": 1, "f": FEED, "p": [1]}), "unknown form"),
    (raw_cursor({"v": 1, "f": "id", "p": {}}), "another feed ('id')"),
    (raw_cursor({"v": 1, "p": {}}), "another feed (None)"),
    (raw_cursor({"v": 1, "f": FEED, "p": {"x": 1}}), "'x' is not a partition"),
    (raw_cursor({"v": 1, "f": FEED, "p": {"-1": 1}}), "'-1' is not a partition"),
    (raw_cursor({"v": 1, "f": FEED, "p": {"100001": 1}}), "not a partition"),
    (raw_cursor({"v": 1, "f": FEED, "p": {"0": -1}}), "-1 is not an offset"),
    (raw_cursor({"v": 1, "f": FEED, "p": {"0": 1.5}}), "1.5 is not an offset"),
    (raw_cursor({"v": 1, "f": FEED, "p": {"0": True}}), "True is not an offset"),
    (raw_cursor({"v": 1, "f": FEED, "p": {"0": "7"}}), "'7' is not an offset"),
], ids=["plus-and-slash", "space", "too-long", "one-char", "not-json", "a-list", "other-version", "positions-a-list",
        "other-feed", "no-feed", "partition-word", "negative-partition", "huge-partition", "negative-offset",
        "fraction-offset", "bool-offset", "string-offset"])
def test_a_cursor_this_service_did_not_write_is_refused_saying_why(cursor, why) -> None:
    with pytest.raises(InvalidCursor, match="^cursor: ") as caught:
        decode_cursor(cursor, FEED)
    assert why in str(caught.value)
    assert isinstance(caught.value, ValueError)  # the views answer 400


# --- a page ------------------------------------------------------------------------------------------


def test_a_page_takes_one_change_from_each_partition_in_turn() -> None:
    changes = {0: log(0, 0, 1, 2), 1: log(1, 0, 1), 2: log(2, 5)}
    first = page(changes, {}, 4)
    assert [(c.partition, c.offset) for c in first.items] == [(0, 0), (1, 0), (2, 5), (0, 1)]
    assert first.positions == {0: 2, 1: 1, 2: 6} and first.more
    rest = page(changes, first.positions, 10)
    assert [(c.partition, c.offset) for c in rest.items] == [(1, 1), (0, 2)]  # this cursor starts the turn at 1
    assert rest.positions == {0: 3, 1: 2, 2: 6} and not rest.more
    assert page(changes, rest.positions, 10) == Page((), rest.positions, False)  # at the end: the same cursor again


def test_with_a_limit_of_one_the_partitions_take_turns() -> None:
    changes = {p: log(p, *range(10)) for p in range(3)}
    positions: dict[int, int] = {}
    served = []
    for _ in range(9):
        result = page(changes, positions, 1)
        served.append(result.items[0].partition)
        positions = result.positions
    assert sorted(served[:3]) == sorted(served[3:6]) == sorted(served[6:]) == [0, 1, 2]


def test_a_partition_the_cursor_does_not_name_is_read_from_its_beginning() -> None:
    result = page({0: log(0, 0, 1), 1: log(1, 40, 41)}, {0: 2}, 10)
    assert [(c.partition, c.offset) for c in result.items] == [(1, 40), (1, 41)]
    assert result.positions == {0: 2, 1: 42}


def test_a_partition_this_worker_does_not_know_keeps_its_position() -> None:
    result = page({0: log(0, 0)}, {0: 0, 5: 17}, 10)
    assert result.positions == {0: 1, 5: 17}


def test_a_worker_that_has_read_less_answers_fewer_changes_never_others() -> None:
    ahead = page({0: log(0, 0, 1, 2, 3)}, {}, 10)
    behind = page({0: log(0, 0, 1)}, ahead.positions, 10)
    assert behind == Page((), ahead.positions, False)


def test_gaps_left_by_compaction_are_stepped_over() -> None:
    result = page({0: log(0, 3, 9, 10)}, {0: 4}, 1)
    assert [c.offset for c in result.items] == [9] and result.positions == {0: 10}


@pytest.mark.parametrize("limit", [0, -1], ids=["zero", "negative"])
def test_a_limit_below_one_is_refused(limit) -> None:
    with pytest.raises(ValueError, match="limit"):
        page({0: log(0, 0)}, {}, limit)


# --- paging through a log that grows ------------------------------------------------------------------

# a page: records appended before it (partition, the gap to the next offset), how much of each
# partition the answering worker has read (None: all of it), and the limit asked for
steps = st.lists(st.tuples(
    st.lists(st.tuples(st.integers(0, 4), st.integers(1, 3)), max_size=6),
    st.one_of(st.none(), st.lists(st.floats(0, 1), min_size=5, max_size=5)),
    st.integers(1, 7),
), min_size=1, max_size=25)


def _drain(logs, cursor, limit=4):
    seen = []
    while True:  # an up-to-date worker, to the end
        result = page(logs, decode_cursor(cursor, FEED), limit)
        cursor = encode_cursor(result.positions, FEED)
        seen.extend(result.items)
        if not result.more:
            return seen, cursor


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.lists(st.integers(0, 3), min_size=5, max_size=5), steps)
def test_paging_a_growing_log_hands_out_every_change_once_in_partition_order(partitions, first, plan) -> None:
    logs: dict[int, list[Change]] = {p: [] for p in range(partitions)}
    next_offset = {p: first[p] for p in range(partitions)}  # the first records may be gone already
    seen: list[Change] = []
    cursor = None
    for appends, read, limit in plan:
        for p, gap in appends:
            p %= partitions
            logs[p].append(Change(p, next_offset[p], f"k{p}-{next_offset[p]}", next_offset[p]))
            next_offset[p] += gap  # offsets of other records (transaction markers, compacted ones) are skipped
        view = logs if read is None else {p: changes[:int(len(changes) * read[p])] for p, changes in logs.items()}
        result = page(view, decode_cursor(cursor, FEED), limit)
        cursor = encode_cursor(result.positions, FEED)
        seen.extend(result.items)
    rest, cursor = _drain(logs, cursor)
    seen.extend(rest)
    assert page(logs, decode_cursor(cursor, FEED), 4).items == ()
    assert len(seen) == len({(c.partition, c.offset) for c in seen})  # nothing twice
    for p, changes in logs.items():
        assert [c for c in seen if c.partition == p] == changes  # everything, in order


# a page of the compacted topic: the writes before it (key, tombstone?), whether the broker
# compacted before it, and the limit
compacted_steps = st.lists(st.tuples(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4).map(lambda n: n == 0)), max_size=5),
    st.booleans(),
    st.integers(1, 4),
), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(compacted_steps)
def test_a_cache_paging_through_a_compacted_topic_ends_up_with_every_keys_latest_value(plan) -> None:
    partitions = 3
    logs: dict[int, list[Change]] = {p: [] for p in range(partitions)}
    next_offset = dict.fromkeys(range(partitions), 0)
    table: dict[str, int] = {}
    cache: dict[str, int] = {}
    cursor = None
    for step, (writes, compacts, limit) in enumerate(plan):
        for number, tombstone in writes:
            key, p = f"pd{number}", number % partitions  # a key lives in one partition
            value = None if tombstone else step * 100 + next_offset[p]
            logs[p].append(Change(p, next_offset[p], key, value))
            next_offset[p] += 1
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        if compacts:  # a record goes once a later one of its key exists
            for p, changes in logs.items():
                latest = {c.key: c.offset for c in changes}
                logs[p] = [c for c in changes if latest[c.key] == c.offset]
        result = page(logs, decode_cursor(cursor, FEED), limit)
        cursor = encode_cursor(result.positions, FEED)
        _into(cache, result.items)
    rest, _ = _drain(logs, cursor, 3)
    _into(cache, rest)
    assert cache == table


def _into(cache: dict, changes) -> None:
    for change in changes:
        if change.value is None:
            cache.pop(change.key, None)
        else:
            cache[change.key] = change.value
