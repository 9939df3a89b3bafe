"""The simulator's CRM side (dev/operator_traffic.py) tells the story of its queue_log: the
softphone registers before a login, every pause is a CRM status the reason means, every
log-off goes OFFLINE and unregisters, a dropped endpoint comes back; and the queue_log of a
seed is the same whether or not this traffic is told."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import orjson
import pytest

from dev.operator_traffic import (
    PAUSE_STATUSES,
    REGISTER_LEAD_S,
    SIP_DROP_S,
    STATUSES,
    OperatorRecord,
    OperatorTraffic,
    SipRegistration,
    StatusCommand,
)
from dev.simulate import SHIFT_MEAN_S, CallCenterSimulation
from tables.callcenter.events import QueueLogRecord

START = 1_700_000_000.0
HOUR = 3600.0
AGENT = re.compile(r"^(PJSIP|SIP)/[0-9]{4,}$")
BY = re.compile(r"^(operator|manager:[a-z]+)$")
PAUSES = {"PAUSE", "PAUSEALL"}
UNPAUSES = {"UNPAUSE", "UNPAUSEALL"}


@dataclass
class Day:
    queue_log: list[QueueLogRecord]
    crm: list[OperatorRecord]
    traffic: OperatorTraffic
    agents: set[str]


def simulate(seed: int = 8, hours: float = 10.0, step: float = 60.0, sip_drop_p: float = 0.3,
             told: bool = True) -> Day:
    """A small center (40 operators, 1 ev/s) for longer than a shift; a generous drop share so a few hours show drops."""
    traffic = OperatorTraffic(seed + 3, START, SHIFT_MEAN_S, sip_drop_p=sip_drop_p,
                              topic_commands="t.operator-commands", topic_registrations="t.sip-registrations")
    simulation = CallCenterSimulation(seed=seed, start=START, rate=1.0, operators=40,
                                      observer=traffic if told else None)
    queue_log: list[QueueLogRecord] = []
    crm: list[OperatorRecord] = []
    until = START
    while until < START + hours * HOUR:
        until = min(until + step, START + hours * HOUR)
        queue_log += simulation.advance(until)
        crm += traffic.due(until)
    return Day(queue_log, crm, traffic, set(simulation.memberships))


@pytest.fixture(scope="module")
def day() -> Day:
    return simulate()


def timelines(day: Day) -> dict[str, list[QueueLogRecord | OperatorRecord]]:
    """Per operator, its member events and CRM records in time order; at one time, the CRM first."""
    events: dict[str, list[tuple[float, int, int, QueueLogRecord | OperatorRecord]]] = defaultdict(list)
    for n, r in enumerate(day.crm):
        events[r.operator].append((r.time, 0, n, r))
    for n, q in enumerate(day.queue_log):
        if q.agent in day.agents and q.callid == "NONE":
            events[q.agent].append((q.time, 1, n, q))
    return {agent: [e[-1] for e in sorted(seen)] for agent, seen in events.items()}


def test_records_have_the_fixed_wire_format(day):
    assert day.crm
    for record in day.crm:
        topic, key, value = day.traffic.wire(record)
        body = orjson.loads(value)
        assert key == body["operator"].encode() and body["operator"] in day.agents and AGENT.match(body["operator"])
        assert isinstance(body["time"], float) and START <= body["time"] <= START + 11 * HOUR
        if isinstance(record, StatusCommand):
            assert topic == "t.operator-commands"
            assert list(body) == ["operator", "status", "reason", "time", "by"]
            assert body["status"] in STATUSES and isinstance(body["reason"], str) and BY.match(body["by"])
        else:
            assert topic == "t.sip-registrations"
            assert list(body) == ["operator", "endpoint", "registered", "time"]
            assert body["endpoint"] == body["operator"] and isinstance(body["registered"], bool)


def test_the_service_derives_on_call_and_wrap_up_itself(day):
    statuses = Counter(r.status for r in day.crm if isinstance(r, StatusCommand))
    assert not statuses["ON_CALL"] and not statuses["WRAP_UP"]
    for status in ("ONLINE", "OFFLINE", "PAUSE", "BREAK", "TRAINING", "MEETING", "DO_NOT_DISTURB"):
        assert statuses[status], f"no {status} in six hours"


def test_each_operators_records_come_in_time_order_and_others_at_most_a_minute_late(day):
    """Per key (the operator) the order holds; a login's registration is only known when the
    simulation reaches the login, so it may come after later records of other operators."""
    last: dict[str, float] = {}
    latest = START
    for r in day.crm:
        assert r.time > last.get(r.operator, START - 1)
        last[r.operator] = r.time
        assert r.time >= latest - REGISTER_LEAD_S[1]
        latest = max(latest, r.time)


def test_every_operator_event_follows_the_crm_and_the_softphone(day):
    """Replayed per operator: a login finds the endpoint registered and ONLINE (PAUSE when it
    joins paused); a pause finds the status its reason means; an unpause ONLINE; a log-off
    OFFLINE, then the endpoint unregisters before anything else."""
    logins = pauses = logoffs = 0
    for agent, timeline in timelines(day).items():
        registered, status, reason, members, leaving = False, "", "", 0, False
        for r in timeline:
            if isinstance(r, SipRegistration):
                if leaving:
                    assert not r.registered, f"{agent}: the softphone registered again before unregistering"
                    leaving = False
                registered = r.registered
            elif isinstance(r, StatusCommand):
                status, reason = r.status, r.reason
            elif r.event == "ADDMEMBER":
                if not members:
                    logins += 1
                    assert not leaving, f"{agent} logged in again before the softphone of the last shift closed"
                    assert registered, f"{agent} logged in with no endpoint registered"
                    assert status == ("PAUSE" if r.data == ("PAUSED",) else "ONLINE"), (agent, r, status)
                members += 1
            elif r.event == "REMOVEMEMBER":
                members -= 1
                assert status == "OFFLINE", f"{agent} logged off in {status}"
                if not members:
                    logoffs += 1
                    leaving = True
            elif r.event in PAUSES:
                pauses += 1
                allowed = {s for s, _ in PAUSE_STATUSES.get(r.data[0], (("PAUSE", 1.0),))}
                assert status in allowed and reason == r.data[0], f"{agent} {r.event} {r.data} in {status} {reason!r}"
            elif r.event in UNPAUSES:
                assert status == "ONLINE", f"{agent} {r.event} in {status}"
    assert logins > 40 and pauses > 300 and logoffs > 20


@pytest.mark.parametrize("reason, status", [("lunch", "BREAK"), ("break", "BREAK"), ("training", "TRAINING")])
def test_a_named_pause_is_preceded_by_its_crm_status(day, reason, status):
    latest: dict[str, StatusCommand] = {}
    merged = sorted([(r.time, 0, r) for r in day.crm if isinstance(r, StatusCommand)]
                    + [(q.time, 1, q) for q in day.queue_log if q.event in PAUSES], key=lambda e: e[:2])
    seen = 0
    for _, _, r in merged:
        if isinstance(r, StatusCommand):
            latest[r.operator] = r
        elif r.data[0] == reason:
            seen += 1
            command = latest[r.agent]
            assert (command.status, command.reason) == (status, reason) and command.time <= r.time
    assert seen


def test_a_dropped_endpoint_registers_again_minutes_later(day):
    drops = back = 0
    for agent, timeline in timelines(day).items():
        members = 0
        for n, r in enumerate(timeline):
            if isinstance(r, QueueLogRecord):
                members += {"ADDMEMBER": 1, "REMOVEMEMBER": -1}.get(r.event, 0)
            elif isinstance(r, SipRegistration) and not r.registered and members:  # not a log-off's
                drops += 1
                later = timeline[n + 1:]
                again = next((x for x in later if isinstance(x, SipRegistration)), None)
                logoff = next((x for x in later if isinstance(x, QueueLogRecord) and x.event == "REMOVEMEMBER"), None)
                if again is not None and again.registered:
                    back += 1
                    assert SIP_DROP_S[0] <= again.time - r.time <= SIP_DROP_S[1] + 0.001
                    assert logoff is None or logoff.time >= again.time
                else:  # logged off while the endpoint was away: no re-registration in that shift
                    assert logoff is not None and (again is None or logoff.time <= again.time), (agent, r)
    assert drops >= 3 and back >= 2, (drops, back)


def test_no_drops_when_switched_off():
    quiet = simulate(hours=3.0, sip_drop_p=0.0)
    registrations = Counter(r.registered for r in quiet.crm if isinstance(r, SipRegistration))
    offline = sum(isinstance(r, StatusCommand) and r.status == "OFFLINE" for r in quiet.crm)
    assert registrations[False] == offline and registrations[True] >= 40
    with pytest.raises(ValueError):
        OperatorTraffic(1, START, SHIFT_MEAN_S, sip_drop_p=1.0)


def test_the_queue_log_of_a_seed_is_the_same_with_or_without_operator_status(day):
    assert simulate(told=False).queue_log == day.queue_log


def per_operator(records: list[OperatorRecord]) -> dict[str, list[OperatorRecord]]:
    grouped: dict[str, list[OperatorRecord]] = defaultdict(list)
    for r in records:
        grouped[r.operator].append(r)
    return grouped


def test_same_seed_same_crm_records_however_time_is_stepped(day):
    stepped = simulate(step=7.0).crm
    assert per_operator(stepped) == per_operator(day.crm)
    assert sorted(stepped, key=lambda r: (r.time, r.operator)) == sorted(day.crm, key=lambda r: (r.time, r.operator))
    assert simulate(seed=9, hours=1.0).crm != simulate(seed=8, hours=1.0).crm


def test_a_shift_costs_a_handful_of_records_per_operator_hour(day):
    """About twenty per operator-hour logged in: a login and log-off each two or three, a pause
    and its unpause two, a pause every 20 minutes or so, and an ONLINE after each call's wrap-up
    (about fourteen calls an hour)."""
    logged_in_s, online, last = 0.0, set[str](), START
    for q in day.queue_log:
        logged_in_s += len(online) * (q.time - last)
        last = q.time
        if q.event == "ADDMEMBER":
            online.add(q.agent)
        elif q.event == "REMOVEMEMBER":
            online.discard(q.agent)
    per_hour = len(day.crm) / (logged_in_s / HOUR)
    assert 12.0 <= per_hour <= 30.0, per_hour


def test_a_crm_change_never_comes_before_the_operators_previous_event():
    traffic = OperatorTraffic(5, START, SHIFT_MEAN_S, sip_drop_p=0.0)
    traffic.logged_in(START + 100.0, "SIP/1001", paused=False)
    traffic.paused(START + 100.2, "SIP/1001", "lunch")  # the CRM leads Asterisk by up to 1.5 s
    traffic.unpaused(START + 100.3, "SIP/1001")
    traffic.logged_off(START + 100.4, "SIP/1001")
    records = traffic.due(START + 200.0)
    assert [(type(r).__name__, getattr(r, "status", None)) for r in records] == [
        ("SipRegistration", None), ("StatusCommand", "ONLINE"), ("StatusCommand", "BREAK"),
        ("StatusCommand", "ONLINE"), ("StatusCommand", "OFFLINE"), ("SipRegistration", None)]
    times = [r.time for r in records]
    assert times[1] <= START + 100.0 < times[2] <= START + 100.2 < times[3] <= START + 100.3 < times[4] <= START + 100.4
    assert START + 100.4 < times[5] and [r.registered for r in records if isinstance(r, SipRegistration)] == [True, False]


def test_topics_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TOPIC_OPERATOR_COMMANDS", "x.operator-commands")
    monkeypatch.setenv("TOPIC_SIP_REGISTRATIONS", "x.sip-registrations")
    traffic = OperatorTraffic(1, START, SHIFT_MEAN_S)
    command = StatusCommand("SIP/1001", "ONLINE", "", START, "operator")
    assert traffic.wire(command)[0] == "x.operator-commands"
    assert traffic.wire(SipRegistration("SIP/1001", "SIP/1001", True, START))[0] == "x.sip-registrations"
    monkeypatch.delenv("TOPIC_OPERATOR_COMMANDS")
    assert OperatorTraffic(1, START, SHIFT_MEAN_S).wire(command)[0] == "operator-commands"


def test_each_calls_wrap_up_ends_with_the_operator_setting_online(day):
    """The service sets WRAP_UP when a call ends and the CRM keeps it until the operator moves
    on (seed 003): the simulated operator says ONLINE once its wrap-up is over."""
    ends = [q for q in day.queue_log if q.event in ("COMPLETEAGENT", "COMPLETECALLER", "BLINDTRANSFER", "ATTENDEDTRANSFER")]
    onlines = defaultdict(list)
    for r in day.crm:
        if isinstance(r, StatusCommand) and r.status == "ONLINE":
            onlines[r.operator].append(r.time)
    followed = sum(any(0.0 < t - end.time <= 60.0 for t in onlines[end.agent]) for end in ends)
    assert ends and followed >= 0.9 * len(ends), (followed, len(ends))  # not when a pause or log-off came first
