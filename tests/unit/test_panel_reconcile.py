"""The panel against Asterisk's QueueStatus (tables/callcenter/reconcile.py): what differs, in
either direction, what two answers in a row confirm, and the panel's events that repair it."""

from __future__ import annotations

import pytest

from tables.callcenter.calls import LOST, CallSwept
from tables.callcenter.events import CallEntered, MemberAdded, MemberPaused, MemberRemoved
from tables.callcenter.reconcile import (
    AsteriskEntry,
    AsteriskMember,
    Drift,
    DriftKind,
    PanelMember,
    confirmed,
    find_drift,
)

NOW = 1_800_000_000.0


def test_agreement_is_no_drift() -> None:
    assert find_drift([AsteriskMember("support", "SIP/1", False)], [AsteriskEntry("support", "c1", 12.0)],
                      [PanelMember("support", "SIP/1", False)], {"support": ["c1"]}) == set()


@pytest.mark.parametrize("members, entries, panel, waiting, drift", [
    pytest.param([AsteriskMember("support", "SIP/1", True, "lunch")], [], [], {},
                 Drift(DriftKind.MEMBER_MISSING, "support", "SIP/1", True, "lunch"), id="a member the panel lacks"),
    pytest.param([], [], [PanelMember("support", "SIP/1", False)], {},
                 Drift(DriftKind.MEMBER_GONE, "support", "SIP/1"), id="a member Asterisk does not have"),
    pytest.param([AsteriskMember("support", "SIP/1", True, "coffee")], [], [PanelMember("support", "SIP/1", False)], {},
                 Drift(DriftKind.PAUSE, "support", "SIP/1", True, "coffee"), id="paused in Asterisk only"),
    pytest.param([AsteriskMember("support", "SIP/1", False)], [], [PanelMember("support", "SIP/1", True)], {},
                 Drift(DriftKind.PAUSE, "support", "SIP/1", False), id="paused on the panel only"),
    pytest.param([AsteriskMember("sales", "SIP/1", False)], [], [PanelMember("support", "SIP/1", False)], {},
                 None, id="a member of another queue: one missing, one gone"),
    pytest.param([], [AsteriskEntry("support", "c1", 30.0, "+7999", 2)], [], {},
                 Drift(DriftKind.CALL_MISSING, "support", "c1", wait_s=30.0, callerid="+7999", position=2),
                 id="a call waiting the panel lacks"),
    pytest.param([], [], [], {"support": ["c1"]}, Drift(DriftKind.CALL_GONE, "support", "c1"),
                 id="a call the panel has waiting, Asterisk not"),
    pytest.param([], [AsteriskEntry("sales", "c1", 5.0)], [], {"support": ["c1"]}, None,
                 id="a call waiting in another queue: found there, gone here"),
])
def test_each_difference_is_a_drift(members, entries, panel, waiting, drift) -> None:
    found = find_drift(members, entries, panel, waiting)
    if drift is None:
        assert len(found) == 2 and {d.kind for d in found} <= set(DriftKind)
    else:
        assert found == {drift}
        (only,) = found
        assert (only.reason, only.wait_s, only.callerid, only.position) == (
            drift.reason, drift.wait_s, drift.callerid, drift.position)


def test_a_drift_is_repaired_only_when_two_answers_in_a_row_show_it() -> None:
    first = find_drift([], [AsteriskEntry("support", "c1", 10.0)], [], {"support": ["c2"]})
    second = find_drift([], [AsteriskEntry("support", "c1", 11.0)], [], {})  # c2's end arrived meanwhile
    sure = confirmed(first, second)
    assert sure == {Drift(DriftKind.CALL_MISSING, "support", "c1")}
    assert next(iter(sure)).wait_s == 11.0  # the latest answer's word
    assert confirmed(set(), second) == set()


@pytest.mark.parametrize("drift, events", [
    pytest.param(Drift(DriftKind.MEMBER_MISSING, "support", "SIP/1", False), (MemberAdded(NOW, "support", "SIP/1", False),),
                 id="added"),
    pytest.param(Drift(DriftKind.MEMBER_MISSING, "support", "SIP/1", True, "lunch"),
                 (MemberAdded(NOW, "support", "SIP/1", True), MemberPaused(NOW, "support", "SIP/1", True, "lunch")),
                 id="added paused, with its reason"),
    pytest.param(Drift(DriftKind.MEMBER_GONE, "support", "SIP/1"), (MemberRemoved(NOW, "support", "SIP/1"),), id="removed"),
    pytest.param(Drift(DriftKind.PAUSE, "support", "SIP/1", True, "coffee"),
                 (MemberPaused(NOW, "support", "SIP/1", True, "coffee"),), id="paused"),
    pytest.param(Drift(DriftKind.PAUSE, "support", "SIP/1", False, "stale"),
                 (MemberPaused(NOW, "support", "SIP/1", False, ""),), id="unpaused"),
    pytest.param(Drift(DriftKind.CALL_MISSING, "support", "c1", wait_s=30.0, callerid="+7999", position=2),
                 (CallEntered(NOW - 30.0, "c1", "support", "+7999", 2),), id="a call entered when Asterisk says"),
    pytest.param(Drift(DriftKind.CALL_GONE, "support", "c1"), (CallSwept(NOW, "c1", "support", LOST),), id="a call lost"),
])
def test_a_drift_is_repaired_by_the_panels_own_events_at_the_answers_time(drift, events) -> None:
    assert drift.repair(NOW) == events
