"""The KRT status queue (tables/deptrans/queue.py): latest status only, one send in flight
per driver, answers, retries and lost sends; and, for any interleaving, that nothing
accepted is sent again, that KRT hears a driver's statuses in order, and that the newest
status gets through when KRT works."""

from __future__ import annotations

import math
from typing import Optional

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.deptrans.drivers import DriverStatus, StatusToReport, driver_key
from tables.deptrans.queue import (
    EntryState,
    InFlight,
    QueueEntry,
    accepted,
    enqueue,
    failed,
    forgettable,
    ready,
    rejected,
    retry_delay_s,
    take,
)

T0 = 1_800_000_000.0
PARK, DRIVER = "park1", "drv1"
KEY = driver_key(PARK, DRIVER)
LEASE = 30.0
ONLINE, BUSY, OFFLINE = DriverStatus.ONLINE, DriverStatus.BUSY, DriverStatus.OFFLINE


def status(at: float, value: DriverStatus = ONLINE) -> StatusToReport:
    return StatusToReport(PARK, DRIVER, "pd1", value, T0 + at)


def queued(*ats: float) -> QueueEntry:
    entry: Optional[QueueEntry] = None
    for at in ats:
        entry = enqueue(entry, status(at))
    assert entry is not None
    return entry


def sent(entry: QueueEntry, now: float = 0.0) -> tuple[QueueEntry, InFlight]:
    after, send = take(entry, T0 + now, LEASE)
    assert send is not None
    return after, send


# --- enqueue ---------------------------------------------------------------------------------------


def test_a_new_entry_waits_with_its_status() -> None:
    entry = enqueue(None, status(0))
    assert entry == QueueEntry(KEY, pending=status(0)) and entry.state == EntryState.PENDING


@pytest.mark.parametrize("ats, pending", [
    ((0, 10), 10), ((10, 0), 10), ((0, 0), 0), ((0, 10, 5), 10), ((0, 5, 10, 20), 20),
], ids=["newer-replaces", "older-dropped", "same-time-dropped", "older-after-newer", "many"])
def test_only_the_newest_status_waits(ats, pending) -> None:
    assert queued(*ats).pending == status(pending)


def test_a_newer_status_waits_as_the_next_while_one_is_in_flight() -> None:
    entry, send = sent(queued(0))
    entry = enqueue(entry, status(10, OFFLINE))
    assert entry.state == EntryState.IN_FLIGHT and entry.in_flight == send and entry.pending == status(10, OFFLINE)
    assert take(entry, T0 + 1, LEASE) == (entry, None)  # one at a time


@pytest.mark.parametrize("late", [-5, 0], ids=["older", "same-time"])
def test_a_status_not_newer_than_the_one_in_flight_is_dropped(late) -> None:
    entry, _ = sent(queued(0))
    assert enqueue(entry, status(late, OFFLINE)) == entry


@pytest.mark.parametrize("late", [-5, 0], ids=["older", "same-time"])
def test_a_status_not_newer_than_the_last_accepted_is_dropped(late) -> None:
    entry, send = sent(queued(0))
    entry = accepted(entry, send)
    assert entry == QueueEntry(KEY, last_accepted_at=T0)
    assert enqueue(entry, status(late, OFFLINE)) == entry
    assert enqueue(entry, status(1)).pending == status(1)


# --- take and answers ---------------------------------------------------------------------------------


def test_take_sends_the_pending_status_once() -> None:
    entry, send = sent(queued(0), now=3)
    assert send == InFlight(status(0), attempt=1, taken_at=T0 + 3)
    assert entry == QueueEntry(KEY, in_flight=send)
    assert not ready(entry, T0 + 4, LEASE)


def test_nothing_to_take_from_an_idle_entry() -> None:
    idle = QueueEntry(KEY, last_accepted_at=T0)
    assert take(idle, T0, LEASE) == (idle, None) and idle.state == EntryState.IDLE


def test_accepted_removes_the_sent_status_and_lets_the_next_go() -> None:
    entry, first = sent(queued(0))
    entry = enqueue(entry, status(10, OFFLINE))
    entry = accepted(entry, first)
    assert entry == QueueEntry(KEY, pending=status(10, OFFLINE), last_accepted_at=T0)
    entry, second = sent(entry, now=1)
    assert second.report == status(10, OFFLINE) and second.attempt == 1


def test_a_failed_send_is_pending_again_and_waits_for_its_retry() -> None:
    entry, send = sent(queued(0))
    entry = failed(entry, send, T0 + 1, retry_after_s=retry_delay_s(1, 1.0, 60.0))
    assert entry == QueueEntry(KEY, pending=status(0), failures=1, retry_at=T0 + 2)
    assert take(entry, T0 + 1.5, LEASE) == (entry, None)
    entry, again = sent(entry, now=2)
    assert again == InFlight(status(0), attempt=2, taken_at=T0 + 2)


def test_a_failed_send_gives_way_to_a_newer_status() -> None:
    entry, send = sent(queued(0))
    entry = enqueue(entry, status(10, OFFLINE))
    entry = failed(entry, send, T0 + 1, retry_after_s=1.0)
    assert entry.pending == status(10, OFFLINE) and entry.in_flight is None and entry.failures == 1
    entry, again = sent(entry, now=2)
    assert again.report == status(10, OFFLINE) and again.attempt == 2


def test_a_newer_status_keeps_the_drivers_backoff() -> None:
    entry, send = sent(queued(0))
    entry = failed(entry, send, T0, retry_after_s=8.0)
    entry = enqueue(entry, status(5))
    assert entry.retry_at == T0 + 8 and not ready(entry, T0 + 7, LEASE) and ready(entry, T0 + 8, LEASE)


def test_success_resets_the_backoff() -> None:
    entry, send = sent(queued(0))
    entry = failed(entry, send, T0, retry_after_s=4.0)
    entry, send = sent(entry, now=4)
    entry = accepted(entry, send)
    assert (entry.failures, entry.retry_at) == (0, 0.0)


def test_a_rejected_status_is_dropped_not_retried() -> None:
    entry, send = sent(queued(0))
    entry = enqueue(entry, status(10, OFFLINE))
    entry = rejected(entry, send)
    assert entry == QueueEntry(KEY, pending=status(10, OFFLINE), last_rejected_at=T0)
    entry, send = sent(entry)
    entry = rejected(entry, send)
    assert entry == QueueEntry(KEY, last_rejected_at=T0 + 10)
    assert enqueue(entry, status(5)) == entry  # nothing older than a refused status goes after it


def test_an_unanswered_send_is_presumed_lost_after_its_lease_and_sent_again() -> None:
    entry, send = sent(queued(0))
    assert not ready(entry, T0 + LEASE - 0.001, LEASE)
    entry, again = sent(entry, now=LEASE)
    assert again == InFlight(status(0), attempt=2, taken_at=T0 + LEASE) and entry.failures == 1


def test_after_a_lost_send_the_newest_status_goes_instead() -> None:
    entry, first = sent(queued(0))
    entry = enqueue(entry, status(10, OFFLINE))
    entry, second = sent(entry, now=LEASE + 1)
    assert second.report == status(10, OFFLINE) and entry.pending is None
    # the lost send's answer comes after all: it was accepted, the newer one stays in flight
    entry = accepted(entry, first)
    assert entry.in_flight == second and entry.last_accepted_at == T0


@pytest.mark.parametrize("answer", ["failed", "rejected"])
def test_an_answer_to_a_send_the_entry_no_longer_holds_changes_nothing(answer) -> None:
    entry, first = sent(queued(0))
    entry = enqueue(entry, status(10))
    entry, second = sent(entry, now=LEASE)
    after = failed(entry, first, T0 + LEASE + 1, 5.0) if answer == "failed" else rejected(entry, first)
    assert after == entry


def test_the_failure_of_an_earlier_attempt_does_not_fail_the_current_one() -> None:
    entry, first = sent(queued(0))
    entry, second = sent(entry, now=LEASE)  # the same status again
    assert failed(entry, first, T0 + LEASE + 1, 5.0) == entry
    assert accepted(entry, first).state == EntryState.IDLE  # any attempt's acceptance is the status's


def test_accepting_twice_is_accepting_once() -> None:
    entry, send = sent(queued(0))
    once = accepted(entry, send)
    assert accepted(once, send) == once


@pytest.mark.parametrize("failures, delay", [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (10_000, 60.0)],
                         ids=["none", "first", "second", "third", "capped", "huge"])
def test_the_backoff_doubles_up_to_its_cap(failures, delay) -> None:
    assert retry_delay_s(failures, 1.0, 60.0) == delay


@pytest.mark.parametrize("entry, now, gone", [
    (QueueEntry(KEY, last_accepted_at=T0), T0 + 100, True),
    (QueueEntry(KEY, last_accepted_at=T0), T0 + 99, False),
    (QueueEntry(KEY), T0, True),
    (QueueEntry(KEY, pending=status(0), last_accepted_at=T0 - 1000), T0 + 1000, False),
    (QueueEntry(KEY, last_accepted_at=T0 - 1000, last_rejected_at=T0), T0 + 99, False),
], ids=["idle-and-old", "idle-but-recent", "never-accepted", "pending", "refused-recently"])
def test_an_idle_entry_is_forgotten_once_old(entry, now, gone) -> None:
    assert forgettable(entry, now, 99.5) is gone


def test_the_stored_entry_reads_back_the_same() -> None:
    entry, _ = sent(queued(0))
    entry = enqueue(entry, status(5, BUSY))
    for stored in (entry, QueueEntry(KEY), queued(1), QueueEntry(KEY, failures=2, retry_at=T0, last_accepted_at=T0 - 1,
                                                                    last_rejected_at=T0)):
        assert QueueEntry.from_json(orjson.loads(orjson.dumps(stored))) == stored


# --- any interleaving ----------------------------------------------------------------------------------

operations = st.lists(st.one_of(
    st.tuples(st.just("enqueue"), st.integers(0, 30)),
    st.tuples(st.just("take"), st.integers(0, 40)),  # after this many seconds
    st.tuples(st.sampled_from(["accept", "fail", "reject"]), st.integers(0, 5)),  # one of the sends made so far
), max_size=60)


def _simulate(ops, *, lease_s: float = LEASE):
    """Drive one entry like a sender with a KRT that answers sends in any order, late or twice."""
    entry: Optional[QueueEntry] = None
    now = T0
    sends: list[InFlight] = []
    accepted_ats: list[float] = []  # what KRT took, in the order the queue heard it
    enqueued: list[float] = []
    for op, arg in ops:
        if op == "enqueue":
            report = status(arg, DriverStatus.OFFLINE if arg % 3 == 0 else ONLINE)
            before = entry
            entry = enqueue(entry, report)
            enqueued.append(report.at)
            newest = max((t for t in (before.last_accepted_at if before else None,
                                      before.last_rejected_at if before else None,
                                      before.pending.at if before and before.pending else None,
                                      before.in_flight.report.at if before and before.in_flight else None)
                           if t is not None), default=None)
            taken_in = entry is not before  # a status dropped leaves the entry as it was
            assert taken_in is (newest is None or report.at > newest)
            assert not taken_in or entry.pending == report
            continue
        if entry is None:
            continue
        if op == "take":
            now += arg
            live = entry.in_flight is not None and now - entry.in_flight.taken_at < lease_s
            entry, send = take(entry, now, lease_s)
            if send is not None:
                assert not live  # (d) never a second send while one is in flight
                assert not accepted_ats or send.report.at > max(accepted_ats)  # (a) nothing accepted goes again
                assert not sends or send.report.at >= sends[-1].report.at  # KRT hears statuses in order
                sends.append(send)
        elif sends:
            answered = sends[arg % len(sends)]
            if op == "accept":
                before = entry.last_accepted_at
                entry = accepted(entry, answered)
                if before is None or answered.report.at > before:
                    accepted_ats.append(answered.report.at)
            elif op == "fail":
                entry = failed(entry, answered, now, retry_after_s=float(arg))
            else:
                entry = rejected(entry, answered)
        # what the entry holds is always newer than what KRT accepted, the next newer than the one in flight
        last = entry.last_accepted_at
        if entry.pending is not None:
            assert last is None or entry.pending.at > last
        if entry.in_flight is not None:
            assert last is None or entry.in_flight.report.at > last
            assert entry.pending is None or entry.pending.at > entry.in_flight.report.at
    return entry, now, sends, accepted_ats, enqueued


@settings(max_examples=600, deadline=None)
@given(operations)
def test_any_interleaving_keeps_the_queue_honest(ops) -> None:
    _, _, sends, accepted_ats, _ = _simulate(ops)
    assert all(a < b for a, b in zip(accepted_ats, accepted_ats[1:]))  # (b) accepted statuses strictly later


@settings(max_examples=400, deadline=None)
@given(operations)
def test_the_newest_status_gets_through_once_krt_works(ops) -> None:
    entry, now, sends, accepted_ats, enqueued = _simulate([op for op in ops if op[0] != "reject"])
    if entry is None:
        return
    # (c) from here on every send succeeds (a lost one is sent again after its lease)
    for _ in range(10):
        now += LEASE
        entry, send = take(entry, now, LEASE)
        if send is not None:
            assert not accepted_ats or send.report.at > max(accepted_ats)
            entry = accepted(entry, send)
            accepted_ats.append(send.report.at)
    assert entry.state == EntryState.IDLE
    assert entry.last_accepted_at == max(enqueued)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_without_a_lease_a_send_is_in_flight_until_answered(ops) -> None:
    entry, now, sends, _, _ = _simulate(ops, lease_s=math.inf)
    if entry is not None and entry.in_flight is not None:
        assert take(entry, now + 1e9, math.inf) == (entry, None)
