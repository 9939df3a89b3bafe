"""Windowed queue metrics: event-time windows, counting each fact once, SPEC's exact formulas."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.callcenter.windows import (
    ANSWERED,
    COMPLETED,
    ENTERED,
    LEDGER_BUCKETS,
    UNANSWERED,
    FactCounter,
    WindowAgg,
    WindowFact,
    add_fact,
    fact_digest,
    ledger_key,
    ledger_keys,
    merge,
    metrics_view,
    window_key,
    window_start,
)

T0 = 1_700_000_000.0
W0 = T0 - 20  # the 60 s window T0 falls in
SL_S = 20.0  # SPEC: T = 20 s by default
SUMS = (
    "entered", "answered", "abandoned", "unanswered", "completed", "answered_within_sl",
    "wait_sum_s", "max_wait_s", "talk_sum_s", "talk_count",
)  # fmt: skip


def entered(n: int, t: float = T0) -> WindowFact:
    return WindowFact(f"enter:{n}", "support", t, ENTERED)


def answered(n: int, holdtime: float, t: float = T0) -> WindowFact:
    return WindowFact(f"connect:{n}", "support", t, ANSWERED, wait_s=holdtime)


def unanswered(n: int, waittime: float | None, abandoned: bool = False, t: float = T0) -> WindowFact:
    return WindowFact(f"exit:{n}", "support", t, UNANSWERED, wait_s=waittime, abandoned=abandoned)


def completed(n: int, calltime: float, t: float = T0) -> WindowFact:
    return WindowFact(f"complete:{n}", "support", t, COMPLETED, talk_s=calltime)


class Changelog:
    """A table as its changelog has it: writes in the order they were made; a crash keeps a prefix."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, object]] = []

    def state(self, landed: int | None = None) -> dict:
        table: dict = {}
        for key, value in self.writes[:landed]:
            table[key] = value
        return table


class Batch:
    """One batch of the queue stage over a table: overlays flushed windows first, then ledgers."""

    def __init__(self, table: dict, log: Changelog, window_s: int = 60, sl_s: float = SL_S) -> None:
        self.table, self.log = table, log
        self.windows: dict = {}
        self.ledgers: dict = {}
        self.counter = FactCounter(_Overlay(table, self.windows), _Overlay(table, self.ledgers), window_s, sl_s)

    def flush(self) -> None:
        for pending in (self.windows, self.ledgers):
            for key, value in pending.items():
                self.table[key] = value
                self.log.writes.append((key, value))
            pending.clear()


class _Overlay:
    def __init__(self, table: dict, pending: dict) -> None:
        self.table, self.pending = table, pending

    def get(self, key: str):
        return self.pending[key] if key in self.pending else self.table.get(key)

    def put(self, key: str, value) -> None:
        self.pending[key] = value


def window(*facts: WindowFact, window_s: int = 60, sl_s: float = SL_S) -> WindowAgg:
    """Count facts the way the queue stage does, in one batch."""
    table: dict = {}
    batch = Batch(table, Changelog(), window_s, sl_s)
    for fact in facts:
        batch.counter.count(fact)
    batch.flush()
    aggs = [v for v in table.values() if isinstance(v, WindowAgg)]
    assert len(aggs) == 1
    return aggs[0]


def sums(agg: WindowAgg) -> tuple:
    return tuple(getattr(agg, name) for name in SUMS)


# --- window assignment -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "start"),
    [(W0, W0), (W0 + 59.999, W0), (W0 + 60, W0 + 60), (W0 - 0.001, W0 - 60)],
    ids=["first-instant", "last-instant", "next-window", "previous-window"],
)
def test_fact_lands_in_the_window_of_its_event_time(t: float, start: float) -> None:
    agg = window(entered(1, t))
    assert (agg.start, agg.end) == (start, start + 60)
    assert window_start(t, 60) == start


def test_window_size_is_configurable() -> None:
    assert (window_start(T0, 300), window_start(T0, 1)) == (T0 - 200, T0)


def test_window_keys_of_a_queue_sort_by_time() -> None:
    starts = [0.0, 60.0, 600.0, 9_999_999_960.0, T0]
    keys = [window_key("support", s) for s in starts]
    assert sorted(keys) == [window_key("support", s) for s in sorted(starts)]
    assert window_key("support", W0) == "support|001699999980"


# --- counting ----------------------------------------------------------------------------


def test_each_kind_of_fact_counts_where_spec_says() -> None:
    agg = window(
        entered(1),
        entered(2),
        answered(1, 10),
        unanswered(2, 30, abandoned=True),
        unanswered(3, 40),
        completed(1, 120),
    )
    view = metrics_view(agg)
    assert {k: view[k] for k in ("entered", "answered", "abandoned", "unanswered", "completed")} == {
        "entered": 2,
        "answered": 1,
        "abandoned": 1,
        "unanswered": 2,
        "completed": 1,
    }


def test_holdtime_equal_to_the_threshold_is_within_service_level() -> None:
    agg = window(answered(1, 20), answered(2, 20.001), answered(3, 0))
    assert agg.answered_within_sl == 2


def test_threshold_is_a_parameter() -> None:
    assert window(answered(1, 20), answered(2, 25), sl_s=30).answered_within_sl == 2


def test_service_level_counts_unanswered_calls_in_its_denominator() -> None:
    # 3 answered (2 within 20 s), 1 abandoned, 1 timed out: offered = 5
    agg = window(
        answered(1, 5),
        answered(2, 20),
        answered(3, 45),
        unanswered(4, 60, abandoned=True),
        unanswered(5, 90),
    )
    view = metrics_view(agg)
    assert view["service_level_pct"] == 40.0  # 100 * 2 / (3 + 2)
    assert view["asterisk_sl_pct"] == 66.67  # 100 * 2 / 3
    assert view["abandon_rate_pct"] == 20.0  # 100 * 1 / (3 + 2)


def test_asa_is_the_mean_connect_holdtime() -> None:
    view = metrics_view(window(answered(1, 10), answered(2, 20), answered(3, 31), unanswered(4, 500)))
    assert view["avg_wait_s"] == 20.333  # the unanswered wait is not in ASA


def test_max_wait_covers_unanswered_waits_too() -> None:
    view = metrics_view(window(answered(1, 10), unanswered(2, 90, abandoned=True), unanswered(3, 40)))
    assert view["max_wait_s"] == 90.0


def test_max_wait_of_answered_calls_only() -> None:
    assert metrics_view(window(answered(1, 10), answered(2, 25)))["max_wait_s"] == 25.0


def test_unanswered_wait_unknown_in_asterisk_1_4_does_not_set_the_max() -> None:
    view = metrics_view(window(unanswered(1, None), answered(2, 7)))
    assert (view["unanswered"], view["max_wait_s"]) == (1, 7.0)
    assert metrics_view(window(unanswered(1, None)))["max_wait_s"] is None


def test_avg_talk_is_the_mean_complete_calltime() -> None:
    view = metrics_view(window(completed(1, 100), completed(2, 250), answered(3, 5)))
    assert view["avg_talk_s"] == 175.0


def test_empty_window_has_null_averages_and_percentages() -> None:
    view = metrics_view(WindowAgg(W0, W0 + 60))
    assert view == {
        "start": W0,
        "end": W0 + 60,
        "entered": 0,
        "answered": 0,
        "abandoned": 0,
        "unanswered": 0,
        "completed": 0,
        "answered_within_sl": 0,
        "avg_wait_s": None,
        "max_wait_s": None,
        "avg_talk_s": None,
        "service_level_pct": None,
        "asterisk_sl_pct": None,
        "abandon_rate_pct": None,
    }


def test_window_with_only_entered_calls_has_null_rates() -> None:
    view = metrics_view(window(entered(1), entered(2)))
    assert (view["entered"], view["service_level_pct"], view["abandon_rate_pct"], view["avg_wait_s"]) == (2, None, None, None)


def test_window_with_only_unanswered_calls_has_zero_sl_and_null_asterisk_sl() -> None:
    view = metrics_view(window(unanswered(1, 30, abandoned=True), unanswered(2, 10)))
    assert (view["service_level_pct"], view["asterisk_sl_pct"], view["abandon_rate_pct"]) == (0.0, None, 50.0)
    assert (view["avg_wait_s"], view["avg_talk_s"], view["max_wait_s"]) == (None, None, 30.0)


def test_the_same_fact_twice_counts_once() -> None:
    agg = window(answered(1, 10), answered(1, 10))
    assert (agg.answered, agg.wait_sum_s) == (1, 10.0)


def test_the_same_fact_in_a_later_batch_counts_once() -> None:
    table, log = {}, Changelog()
    for _ in range(3):
        batch = Batch(table, log)
        batch.counter.count(answered(1, 10))
        batch.flush()
    agg = table[window_key("support", W0)]
    assert (agg.answered, agg.wait_sum_s) == (1, 10.0)


def test_a_window_names_the_facts_its_last_write_counted() -> None:
    table, log = {}, Changelog()
    batch = Batch(table, log)
    assert batch.counter.count(entered(1)) and batch.counter.count(entered(2))
    assert not batch.counter.count(entered(1))
    batch.flush()
    agg = table[window_key("support", W0)]
    assert list(agg.recent) == [fact_digest("enter:1"), fact_digest("enter:2")]
    assert agg.buckets == (1 << fact_digest("enter:1") % LEDGER_BUCKETS) | (1 << fact_digest("enter:2") % LEDGER_BUCKETS)
    assert set(ledger_keys("support", W0, agg.buckets)) == {k for k in table if k.count("|") == 2}


def test_every_window_is_written_before_any_ledger_bucket() -> None:
    table, log = {}, Changelog()
    batch = Batch(table, log)
    for n in range(10):
        batch.counter.count(entered(n, t=T0 + 60 * (n % 3)))
    batch.flush()
    kinds = [isinstance(value, WindowAgg) for _, value in log.writes]
    assert kinds == sorted(kinds, reverse=True)


def test_crash_after_the_window_landed_but_not_its_ledger_counts_nothing_twice() -> None:
    log = Changelog()
    first = Batch({}, log)
    first.counter.count(answered(1, 10))
    first.counter.count(entered(2))
    first.flush()
    landed = 1  # the window record only: its ledger buckets were lost with the worker
    assert isinstance(log.writes[0][1], WindowAgg)
    table = log.state(landed)
    replay = Batch(table, log)
    assert not replay.counter.count(answered(1, 10))  # the replay of the same batch
    assert not replay.counter.count(entered(2))
    assert replay.counter.count(entered(3))
    replay.flush()
    again = Batch(table, log)  # and the batch after, with `recent` now naming other facts
    assert not again.counter.count(entered(2))
    agg = table[window_key("support", W0)]
    assert (agg.entered, agg.answered) == (2, 1)


@given(
    batches=st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=12), min_size=1, max_size=6),
    crash_at=st.integers(0, 200),
)
@settings(max_examples=300, deadline=None)
def test_any_crash_and_replay_counts_every_fact_exactly_once(batches: list[list[int]], crash_at: int) -> None:
    """Facts of many windows in batches; the worker dies with any prefix of its writes landed
    and the input is replayed from the start (as after a lost commit): each fact counts once."""
    log = Changelog()
    table: dict = {}
    for ids in batches:
        batch = Batch(table, log)
        for n in ids:
            batch.counter.count(entered(n, t=T0 + 60 * (n % 4)))
        batch.flush()
    table = log.state(min(crash_at, len(log.writes)))
    for ids in batches:
        batch = Batch(table, log)
        for n in ids:
            batch.counter.count(entered(n, t=T0 + 60 * (n % 4)))
        batch.flush()
    counted = {k: v.entered for k, v in table.items() if isinstance(v, WindowAgg)}
    expected: dict[str, int] = {}
    for n in {n for ids in batches for n in ids}:
        key = window_key("support", window_start(T0 + 60 * (n % 4), 60))
        expected[key] = expected.get(key, 0) + 1
    assert counted == expected


def test_ledger_keys_cover_every_bucket_of_a_window() -> None:
    keys = ledger_keys("support", 120.0)
    assert len(set(keys)) == LEDGER_BUCKETS
    assert ledger_key("support", 120.0, fact_digest("x")) in keys
    assert all(k.startswith(window_key("support", 120.0) + "|") for k in keys)
    assert ledger_keys("support", 120.0, 0b101) == [window_key("support", 120.0) + "|00", window_key("support", 120.0) + "|02"]


def test_counting_never_changes_the_window_it_was_given() -> None:
    before = window(answered(1, 10))
    snapshot = orjson.dumps(before)
    add_fact(before, answered(2, 30), 60, SL_S)
    assert orjson.dumps(before) == snapshot


def test_window_survives_its_json_form() -> None:
    # how the windows table stores it: orjson bytes of the dataclass
    agg = window(entered(1), answered(1, 10), unanswered(2, 40, abandoned=True), completed(1, 60))
    assert WindowAgg.from_json(orjson.loads(orjson.dumps(agg))) == agg


# --- merging (the last 15 minutes) -------------------------------------------------------


def test_merged_windows_add_their_sums_and_keep_the_largest_wait() -> None:
    first = window(answered(1, 10), completed(1, 100, t=T0))
    second = window(answered(2, 30, t=T0 + 60), unanswered(3, 50, abandoned=True, t=T0 + 60), completed(2, 200, t=T0 + 60))
    view = metrics_view(merge([first, second], W0, W0 + 120))
    assert (view["start"], view["end"], view["answered"], view["unanswered"], view["completed"]) == (W0, W0 + 120, 2, 1, 2)
    assert (view["avg_wait_s"], view["max_wait_s"], view["avg_talk_s"]) == (20.0, 50.0, 150.0)
    assert (view["service_level_pct"], view["asterisk_sl_pct"], view["abandon_rate_pct"]) == (33.33, 50.0, 33.33)


def test_merge_of_no_windows_is_an_empty_span() -> None:
    view = metrics_view(merge([], W0, W0 + 900))
    assert (view["start"], view["end"], view["answered"], view["service_level_pct"]) == (W0, W0 + 900, 0, None)


# --- properties --------------------------------------------------------------------------


@st.composite
def facts(draw: st.DrawFn) -> WindowFact:
    n = draw(st.integers(0, 12))
    t = W0 + draw(st.integers(0, 59))
    kind = draw(st.sampled_from((ENTERED, ANSWERED, UNANSWERED, COMPLETED)))
    seconds = draw(st.integers(0, 120))  # Asterisk writes whole seconds: sums stay exact
    if kind == ENTERED:
        return WindowFact(f"E:{n}", "support", t, kind)
    if kind == ANSWERED:
        return WindowFact(f"C:{n}", "support", t, kind, wait_s=float(seconds))
    if kind == UNANSWERED:
        wait = draw(st.one_of(st.none(), st.just(float(seconds))))
        return WindowFact(f"U:{n}", "support", t, kind, wait_s=wait, abandoned=draw(st.booleans()))
    return WindowFact(f"D:{n}", "support", t, kind, talk_s=float(seconds))


def distinct(items: list[WindowFact]) -> list[WindowFact]:
    """Each fact id once, its first appearance (a replayed fact is the same fact)."""
    seen: dict[str, WindowFact] = {}
    for fact in items:
        seen.setdefault(fact.fact_id, fact)
    return list(seen.values())


@settings(max_examples=400, deadline=None)
@given(st.lists(facts(), min_size=1, max_size=25), st.randoms(use_true_random=False), st.data())
def test_any_order_with_duplicates_counts_like_each_fact_once(
    items: list[WindowFact], rnd: random.Random, data: st.DataObject
) -> None:
    once = window(*distinct(items))
    arriving = distinct(items) + data.draw(st.lists(st.sampled_from(distinct(items)), max_size=10))
    rnd.shuffle(arriving)
    messy = window(*arriving)
    assert sums(messy) == sums(once)
    assert metrics_view(messy) == metrics_view(once)


def _as_windows(groups: list[list[WindowFact]]) -> list[WindowAgg]:
    return [window(*distinct(g)) for g in groups if g]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(facts(), min_size=1, max_size=6), min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_merge_is_commutative_and_associative_in_its_sums(groups: list[list[WindowFact]], rnd: random.Random) -> None:
    windows = _as_windows(groups)
    whole = merge(windows, W0, W0 + 900)
    shuffled = windows[:]
    rnd.shuffle(shuffled)
    assert sums(merge(shuffled, W0, W0 + 900)) == sums(whole)
    cut = rnd.randint(0, len(windows))
    nested = merge([merge(windows[:cut], W0, W0 + 900), merge(windows[cut:], W0, W0 + 900)], W0, W0 + 900)
    assert sums(nested) == sums(whole)
    assert sums(merge([whole], W0, W0 + 900)) == sums(whole)


@settings(max_examples=300, deadline=None)
@given(st.lists(facts(), min_size=1, max_size=25))
def test_percentages_are_percentages_and_sl_never_exceeds_asterisk_sl(items: list[WindowFact]) -> None:
    view = metrics_view(window(*distinct(items)))
    for name in ("service_level_pct", "asterisk_sl_pct", "abandon_rate_pct"):
        assert view[name] is None or 0.0 <= view[name] <= 100.0
    if view["asterisk_sl_pct"] is not None:
        assert view["service_level_pct"] <= view["asterisk_sl_pct"]
    assert view["abandoned"] <= view["unanswered"]
    assert view["answered_within_sl"] <= view["answered"]
    if view["avg_wait_s"] is not None:
        assert view["avg_wait_s"] <= view["max_wait_s"]
