"""KRT's shift answers per licence (tables/deptrans/sessions.py): the newest answer wins,
and how a session is published and served to the caches."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.deptrans.drivers import DriverStatus, StatusToReport
from tables.deptrans.sessions import (
    KrtAnswer,
    SessionOutcome,
    SessionState,
    SessionStatus,
    apply_krt_answer,
    past_retention,
    session_active,
    session_record,
    status_update,
)

T0 = 1_800_000_000.0
HOUR = 3600.0
SENT = StatusToReport("park1", "drv1", "pd1", DriverStatus.ONLINE, T0 - 2)
OPEN = KrtAnswer(SessionState.ACTIVE, T0 + 12 * HOUR)
SESSION = SessionStatus("pd1", SessionState.ACTIVE, T0 + 12 * HOUR, T0, "park1", "drv1", T0 - 2)


def test_the_first_answer_is_the_licences_session() -> None:
    assert apply_krt_answer(None, SENT, OPEN, T0) == SessionOutcome(SESSION)


def test_a_newer_answer_replaces_it_with_the_driver_that_brought_it() -> None:
    other_park = StatusToReport("park2", "drv9", "pd1", DriverStatus.OFFLINE, T0 + 50)
    outcome = apply_krt_answer(SESSION, other_park, KrtAnswer(SessionState.CLOSED, T0 + 60), T0 + 60)
    assert outcome == SessionOutcome(SessionStatus("pd1", SessionState.CLOSED, T0 + 60, T0 + 60, "park2", "drv9", T0 + 50))


@pytest.mark.parametrize("at", [T0 - 1, T0], ids=["older", "as-old"])
def test_an_answer_not_newer_than_the_stored_one_changes_nothing(at) -> None:
    outcome = apply_krt_answer(SESSION, SENT, KrtAnswer(SessionState.BLOCKED, None), at)
    assert outcome == SessionOutcome(SESSION, changed=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(list(SessionState))), min_size=1, max_size=20))
def test_the_newest_answer_stays_whatever_order_they_come_in(answers) -> None:
    session = None
    for at, state in answers:
        session = apply_krt_answer(session, SENT, KrtAnswer(state, None), T0 + at).session
    newest = max(at for at, _ in answers)
    assert session is not None and session.updated_at == T0 + newest
    assert session.session_status == next(state for at, state in answers if at == newest)  # the first of its time


@pytest.mark.parametrize("session, now, active", [
    (SESSION, T0, True),
    (SESSION, T0 + 12 * HOUR, False),
    (SessionStatus("pd1", SessionState.ACTIVE, None, T0), T0 + 1e6, True),
    (SessionStatus("pd1", SessionState.CLOSED, T0 + HOUR, T0), T0, False),
    (SessionStatus("pd1", SessionState.BLOCKED, T0 + HOUR, T0), T0, False),
    (None, T0, False),
], ids=["open", "at-its-end", "open-without-an-end", "closed", "blocked", "unknown"])
def test_a_driver_may_work_while_the_shift_is_open(session, now, active) -> None:
    assert session_active(session, now) is active


@pytest.mark.parametrize("now, gone", [(T0 + 12 * HOUR + 99, False), (T0 + 12 * HOUR + 101, True)],
                         ids=["within", "past"])
def test_a_session_is_kept_past_its_end_for_the_retention(now, gone) -> None:
    assert past_retention(SESSION, now, 100.0) is gone


def test_the_published_record_reads_back_as_the_session() -> None:
    record = session_record(SESSION)
    assert record == {"pd_id": "pd1", "session_status": "active", "ends_at": T0 + 12 * HOUR, "updated_at": T0,
                      "park_id": "park1", "driver_id": "drv1", "status_at": T0 - 2}
    assert SessionStatus.from_json(orjson.loads(orjson.dumps(record))) == SESSION
    assert SessionStatus.from_json(orjson.loads(orjson.dumps(SESSION))) == SESSION


def test_the_cache_feed_shows_a_session_or_its_removal() -> None:
    assert status_update("pd1", session_record(SESSION)) == {
        "driver_license_pd_id": "pd1", "session_status": "active", "ends_at": T0 + 12 * HOUR, "updated_at": T0,
        "park_id": "park1", "driver_id": "drv1", "deleted": False}
    assert status_update("pd1", None) == {"driver_license_pd_id": "pd1", "deleted": True}
    anonymous = session_record(SessionStatus("pd2", SessionState.CLOSED, None, T0))
    assert status_update("pd2", anonymous)["park_id"] is None
