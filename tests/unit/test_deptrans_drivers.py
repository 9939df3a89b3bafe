"""Which driver statuses go to KRT (tables/deptrans/drivers.py): the filters and their
reasons, on/off-the-line changes, late data, events out of order, and the state's
expiry, driven through `apply_driver_event` as the agent will."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.deptrans.drivers import (
    DriverOutcome,
    DriverState,
    DriverStatus,
    LastStatus,
    NotReported,
    Position,
    PositionReported,
    Profile,
    ProfileChanged,
    Reported,
    ReportPolicy,
    StatusChanged,
    StatusToReport,
    apply_driver_event,
    driver_key,
    expire_driver,
    normalise_category,
    split_driver_key,
)
from tables.deptrans.regions import Regions
from tables.deptrans.settings import MOSCOW_MKAD

T0 = 1_800_000_000.0
PARK, DRIVER = "park1", "drv1"
KREMLIN = (55.7520, 37.6175)
KHIMKI = (55.8970, 37.4297)  # just outside the MKAD
POLICY = ReportPolicy(Regions.of([MOSCOW_MKAD]), frozenset({"econom", "comfort", "comfort_plus"}), 600.0)
EVERY_STATUS = replace(POLICY, line_changes_only=False)
ONLINE, BUSY, OFFLINE = DriverStatus.ONLINE, DriverStatus.BUSY, DriverStatus.OFFLINE


def profile(pd_id: Optional[str] = "pd1", *categories: str, driver: str = DRIVER) -> ProfileChanged:
    return ProfileChanged(PARK, driver, Profile(pd_id, tuple(categories or ("econom",))))


def removed(driver: str = DRIVER) -> ProfileChanged:
    return ProfileChanged(PARK, driver, None)


def position(at: float, where: tuple[float, float] = KREMLIN, driver: str = DRIVER) -> PositionReported:
    return PositionReported(PARK, driver, where[0], where[1], T0 + at)


def status(value: DriverStatus, at: float, driver: str = DRIVER) -> StatusChanged:
    return StatusChanged(PARK, driver, value, T0 + at)


def report(value: DriverStatus, at: float, pd_id: str = "pd1") -> StatusToReport:
    return StatusToReport(PARK, DRIVER, pd_id, value, T0 + at)


def play(*events, state: Optional[DriverState] = None, policy: ReportPolicy = POLICY) -> tuple[DriverState, list[DriverOutcome]]:
    outcomes = []
    for event in events:
        outcome = apply_driver_event(state, event, policy)
        outcomes.append(outcome)
        if outcome.changed:
            state = outcome.state
    assert state is not None
    return state, outcomes


def reports(outcomes: list[DriverOutcome]) -> list[StatusToReport]:
    return [o.report for o in outcomes if o.report is not None]


READY = (profile(), position(-10))  # a Moscow econom driver, seen 10 s ago


# --- the filters ----------------------------------------------------------------------------------


def test_a_driver_going_online_in_moscow_is_reported_with_the_licence_pd_id() -> None:
    state, outcomes = play(*READY, status(ONLINE, 0))
    assert outcomes[-1] == DriverOutcome(state, report=report(ONLINE, 0))
    assert outcomes[-1].report is not None and outcomes[-1].report.key == driver_key(PARK, DRIVER)
    assert state.reported == Reported("pd1", ONLINE, T0)
    assert state.status == LastStatus(ONLINE, T0) and state.position == Position(*KREMLIN, T0 - 10)


@pytest.mark.parametrize("events, reason", [
    ((position(-10),), NotReported.NO_PROFILE),
    ((profile(None), position(-10)), NotReported.NO_PROFILE),
    ((profile(""), position(-10)), NotReported.NO_PROFILE),
    ((profile(), removed(), position(-10)), NotReported.NO_PROFILE),
    ((profile("pd1", "business", "cargo"), position(-10)), NotReported.NO_CATEGORY),
    ((profile("pd1", "econom"), ProfileChanged(PARK, DRIVER, Profile("pd1", ())), position(-10)), NotReported.NO_CATEGORY),
    ((profile(),), NotReported.NO_POSITION),
    ((profile(), position(-600.001)), NotReported.STALE_POSITION),
    ((profile(), position(-3600)), NotReported.STALE_POSITION),
    ((profile(), position(-10, KHIMKI)), NotReported.OUTSIDE_REGION),
    ((profile(), position(-20), position(-10, KHIMKI)), NotReported.OUTSIDE_REGION),
], ids=["no-profile", "no-pd-id", "empty-pd-id", "profile-removed", "other-categories", "categories-emptied",
        "no-position", "position-a-hair-too-old", "position-an-hour-old", "outside-moscow", "left-moscow"])
def test_a_status_that_is_not_reported_says_why(events, reason) -> None:
    state, outcomes = play(*events, status(ONLINE, 0))
    assert outcomes[-1] == DriverOutcome(state, report=None, not_reported=reason)
    assert state.status == LastStatus(ONLINE, T0) and state.reported is None  # the status is known all the same


@pytest.mark.parametrize("events", [
    (profile(), position(-600)),
    (profile(), position(0)),
    (profile(), position(3600)),
    (profile("pd1", "comfort_plus"), position(-10)),
    (profile("pd1", "business", "comfort"), position(-10)),
    (profile(), position(-10, (55.5780, 37.6500))),
    (profile(), position(-20, KHIMKI), position(-10)),
], ids=["position-exactly-max-age", "position-at-the-status", "position-after-the-status", "comfort-plus-only",
        "one-category-of-several", "500-m-inside-the-south-of-moscow", "came-back-to-moscow"])
def test_a_status_passing_every_filter_is_reported(events) -> None:
    _, outcomes = play(*events, status(ONLINE, 0))
    assert outcomes[-1].report == report(ONLINE, 0)


def test_categories_are_compared_in_one_spelling() -> None:
    assert normalise_category(" Comfort+ ") == normalise_category("comfort plus") == normalise_category("comfort-plus") \
        == "comfort_plus"
    assert normalise_category("Econom") == "econom"


# --- on and off the line -----------------------------------------------------------------------


def test_only_going_on_and_off_the_line_is_reported() -> None:
    _, outcomes = play(*READY, status(ONLINE, 0), status(BUSY, 60), status(ONLINE, 120), status(OFFLINE, 180),
                       status(ONLINE, 240), position(250), status(BUSY, 300))
    assert reports(outcomes) == [report(ONLINE, 0), report(OFFLINE, 180), report(ONLINE, 240)]
    assert [o.not_reported for o in outcomes[2:]] == [None, NotReported.LINE_UNCHANGED, NotReported.LINE_UNCHANGED, None,
                                                      None, None, NotReported.LINE_UNCHANGED]


def test_busy_is_going_on_the_line_too() -> None:
    _, outcomes = play(*READY, status(BUSY, 0))
    assert reports(outcomes) == [report(BUSY, 0)]


def test_a_driver_offline_from_the_start_is_not_reported_going_off() -> None:
    state, outcomes = play(*READY, status(OFFLINE, 0), status(OFFLINE, 60))
    assert [o.not_reported for o in outcomes[2:]] == [NotReported.LINE_UNCHANGED, NotReported.LINE_UNCHANGED]
    assert state.reported is None


def test_every_status_is_reported_when_the_policy_says_so() -> None:
    _, outcomes = play(*READY, status(OFFLINE, -5), status(ONLINE, 0), status(BUSY, 60), status(ONLINE, 120),
                       status(OFFLINE, 180), policy=EVERY_STATUS)
    assert reports(outcomes) == [report(OFFLINE, -5), report(ONLINE, 0), report(BUSY, 60), report(ONLINE, 120),
                                 report(OFFLINE, 180)]


@pytest.mark.parametrize("policy", [POLICY, EVERY_STATUS], ids=["line-changes", "every-status"])
@pytest.mark.parametrize("after", [
    (position(100, KHIMKI),),
    (removed(),),
    (profile("pd1", "business"),),
    (profile(None),),
    (),
], ids=["drove-out-of-moscow", "profile-removed", "category-dropped", "pd-id-gone", "position-went-stale"])
def test_going_off_the_line_after_an_on_line_report_is_reported_wherever_the_driver_is(policy, after) -> None:
    _, outcomes = play(*READY, status(ONLINE, 0), *after, status(OFFLINE, 3600), policy=policy)
    assert reports(outcomes) == [report(ONLINE, 0), report(OFFLINE, 3600)]


def test_going_off_the_line_goes_to_the_licence_krt_was_told_of() -> None:
    _, outcomes = play(*READY, status(ONLINE, 0), profile("pd2"), status(OFFLINE, 60), status(ONLINE, 120))
    assert reports(outcomes) == [report(ONLINE, 0), report(OFFLINE, 60, "pd1"), report(ONLINE, 120, "pd2")]


def test_outside_the_region_going_off_is_not_reported_once_krt_knows_the_driver_is_off() -> None:
    _, outcomes = play(*READY, status(ONLINE, 0), status(OFFLINE, 60), position(100, KHIMKI), status(OFFLINE, 200),
                       policy=EVERY_STATUS)
    assert reports(outcomes) == [report(ONLINE, 0), report(OFFLINE, 60)]
    assert outcomes[-1].not_reported == NotReported.OUTSIDE_REGION


# --- late data -------------------------------------------------------------------------------------


@pytest.mark.parametrize("late, first_reason", [
    ((position(5),), NotReported.NO_POSITION),
    ((position(-300),), NotReported.NO_POSITION),
    ((position(7200),), NotReported.NO_POSITION),
], ids=["position-just-after", "position-from-before-arriving-late", "position-hours-later-status-still-holds"])
def test_a_status_waiting_for_its_position_is_reported_when_it_comes(late, first_reason) -> None:
    state, outcomes = play(profile(), status(ONLINE, 0), *late)
    assert outcomes[1].not_reported == first_reason
    assert outcomes[-1].report == report(ONLINE, 0)  # at the status's own time
    assert outcomes[-1].not_reported is None  # reasons count status events only
    assert state.reported == Reported("pd1", ONLINE, T0)


def test_a_status_waiting_for_its_profile_is_reported_when_it_comes() -> None:
    _, outcomes = play(position(-10), status(ONLINE, 0), profile("pd1", "business"), profile())
    assert [o.not_reported for o in outcomes] == [None, NotReported.NO_PROFILE, None, None]
    assert reports(outcomes) == [report(ONLINE, 0)]
    assert outcomes[2].report is None  # a profile of other categories: still not


def test_late_data_that_does_not_help_reports_nothing() -> None:
    _, outcomes = play(profile(), position(-10, KHIMKI), status(ONLINE, 0), position(-5, KHIMKI), position(-700),
                       profile("pd3"))
    assert reports(outcomes) == []


def test_late_data_reports_only_the_latest_status_and_only_once() -> None:
    _, outcomes = play(profile(), status(ONLINE, 0), status(BUSY, 60), position(70), position(80), profile("pd1", "comfort"))
    assert reports(outcomes) == [report(BUSY, 60)]


def test_late_data_changes_nothing_for_a_status_reported_already() -> None:
    _, outcomes = play(*READY, status(ONLINE, 0), position(10, KHIMKI), position(20), removed(), profile())
    assert reports(outcomes) == [report(ONLINE, 0)]


# --- out of order, duplicates -----------------------------------------------------------------------


@pytest.mark.parametrize("late", [
    status(OFFLINE, -1), status(OFFLINE, 0), status(ONLINE, 0), position(-20), position(-10), position(-10, KHIMKI),
    profile(),
], ids=["older-status", "status-of-the-same-second", "the-same-status-again", "older-position", "same-position-time",
        "other-place-same-time", "the-same-profile-again"])
def test_what_is_not_newer_changes_nothing(late) -> None:
    state, _ = play(*READY, status(ONLINE, 0))
    outcome = apply_driver_event(state, late, POLICY)
    assert outcome == DriverOutcome(state, changed=False)


def test_a_tombstone_for_a_driver_never_seen_stores_nothing() -> None:
    outcome = apply_driver_event(None, removed(), POLICY)
    assert not outcome.changed and outcome.report is None


def test_statuses_arriving_out_of_order_report_only_the_newest() -> None:
    _, outcomes = play(*READY, status(OFFLINE, 60), status(ONLINE, 0), policy=EVERY_STATUS)
    assert reports(outcomes) == [report(OFFLINE, 60)]
    assert not outcomes[-1].changed


def test_drivers_of_one_park_are_apart() -> None:
    assert driver_key(PARK, DRIVER) != driver_key(PARK, "drv2")
    state, outcomes = play(*READY, status(ONLINE, 0))
    other = apply_driver_event(None, status(ONLINE, 0, driver="drv2"), POLICY)
    assert other.state.key == "park1_drv2" and other.not_reported == NotReported.NO_PROFILE


# --- keys, stored form, expiry ---------------------------------------------------------------------


@pytest.mark.parametrize("park_id, driver_id", [("p", "d"), ("0253f79a86d14b7ab9ac1d5d3017be47", "a_b_c"),
                                                ("park-1", "driver.1")], ids=["short", "driver-with-underscores", "dashes"])
def test_a_driver_key_splits_back_into_its_ids(park_id, driver_id) -> None:
    assert split_driver_key(driver_key(park_id, driver_id)) == (park_id, driver_id)


@pytest.mark.parametrize("key", ["", "nounderscore", "_driver", "park_"], ids=["empty", "one-part", "no-park", "no-driver"])
def test_what_is_not_a_driver_key_is_refused(key) -> None:
    with pytest.raises(ValueError):
        split_driver_key(key)


@pytest.mark.parametrize("events", [
    (), READY, (*READY, status(ONLINE, 0)), (removed(), position(1)), (profile(None), status(OFFLINE, 2)),
], ids=["empty", "profile-and-position", "reported", "no-profile", "no-pd-id"])
def test_the_stored_state_reads_back_the_same(events) -> None:
    state = play(*events, state=DriverState(PARK, DRIVER))[0]
    assert DriverState.from_json(orjson.loads(orjson.dumps(state))) == state


KEEP = 86400.0


@pytest.mark.parametrize("events, now, expected", [
    ((*READY, status(ONLINE, 0)), 100, "same"),
    ((*READY, status(OFFLINE, 0)), KEEP + 1, "profile-only"),
    ((*READY, status(ONLINE, 0)), KEEP + 1, "keeps-the-on-line-report"),
    ((position(0), status(OFFLINE, 0)), KEEP + 1, None),
    ((position(0),), KEEP, "same"),
    ((removed(), position(0)), KEEP + 1, None),
], ids=["fresh", "old-offline-driver", "on-line-driver-gone-quiet", "nothing-left", "exactly-kept", "position-only"])
def test_what_is_old_is_forgotten_but_an_open_line_is_not(events, now, expected) -> None:
    state = play(*events, state=DriverState(PARK, DRIVER))[0]
    after = expire_driver(state, T0 + now, KEEP)
    if expected is None:
        assert after is None
    elif expected == "same":
        assert after is state
    elif expected == "profile-only":
        assert after == DriverState(PARK, DRIVER, state.profile)
    else:
        assert after == replace(state, position=None)
        assert after is not None
        _, outcomes = play(status(OFFLINE, KEEP + 2), state=after)
        assert reports(outcomes) == [report(OFFLINE, KEEP + 2)]  # its going off is still reported


# --- invariants --------------------------------------------------------------------------------------

TIMES = st.integers(0, 40).map(float)
events = st.one_of(
    st.builds(lambda s, t: status(s, t), st.sampled_from(list(DriverStatus)), TIMES),
    st.builds(lambda t, w: position(t, w), TIMES, st.sampled_from([KREMLIN, KHIMKI])),
    st.builds(lambda pd, c: profile(pd, c), st.sampled_from(["pd1", "pd2", None]), st.sampled_from(["econom", "cargo"])),
    st.just(removed()),
)


def _run(evts, policy):
    state: Optional[DriverState] = None
    out = []
    for event in evts:
        outcome = apply_driver_event(state, event, policy)
        out.append(outcome)
        if outcome.changed:
            state = outcome.state
    return state, out


@settings(max_examples=250, deadline=None)
@given(st.lists(events, max_size=30), st.sampled_from([POLICY, EVERY_STATUS, replace(POLICY, max_position_age_s=5.0)]))
def test_reports_move_forward_and_open_before_they_close(evts, policy) -> None:
    state, outcomes = _run(evts, policy)
    sent = reports(outcomes)
    assert all(a.at < b.at for a, b in zip(sent, sent[1:]))  # never a status older than one reported
    pds = {e.profile.pd_id for e in evts if isinstance(e, ProfileChanged) and e.profile is not None}
    assert all(r.pd_id in pds for r in sent)
    statuses = [e for e in evts if isinstance(e, StatusChanged)]
    if statuses:
        assert state is not None and state.status is not None
        newest = max(e.at for e in statuses)
        assert state.status.at == newest and state.status.status == next(e.status for e in statuses if e.at == newest)
    if policy.line_changes_only:  # on, off, on, ...: KRT hears the line change, each time
        assert [r.status == DriverStatus.OFFLINE for r in sent] == [i % 2 == 1 for i in range(len(sent))]
    for outcome, event in zip(outcomes, evts):
        assert (outcome.not_reported is not None) <= (isinstance(event, StatusChanged) and outcome.report is None)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=25))
def test_an_event_heard_twice_changes_nothing_the_second_time(evts) -> None:
    once = _run(evts, POLICY)
    twice = _run([e for event in evts for e in (event, event)], POLICY)
    assert twice[0] == once[0]
    assert reports(twice[1]) == reports(once[1])
    assert all(not o.changed and o.report is None for o in twice[1][1::2])
