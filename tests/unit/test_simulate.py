"""The traffic simulator tells a consistent story: replayed from its records alone, every
call and every operator follows Asterisk's rules, and the same seed tells the same story."""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dev.simulate import (
    DEFAULT_QUEUES,
    CallCenterSimulation,
    Pacer,
    add_arguments,
    queue_names,
    record_json,
    record_key,
    staffing,
)
from tables.callcenter.events import NONE, QueueLogRecord
from tables.callcenter.queue_log import decode, interpret

START = 1_700_000_000.0
HOUR = 3600.0

CALL_ENDS = {"COMPLETEAGENT", "COMPLETECALLER", "BLINDTRANSFER", "ATTENDEDTRANSFER"}
UNANSWERED = {"ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"}
MEMBER_EVENTS = {"ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL"}
UNIQUEID = re.compile(r"^[0-9]{10}\.[0-9]+$")
AGENT = re.compile(r"^(PJSIP|SIP)/[0-9]{4,}$")
CALLERID = re.compile(r"^\+7916[0-9]{7}$")


def simulate(seconds: float, step: float = 10.0, **options) -> list[QueueLogRecord]:
    options.setdefault("seed", 1)
    simulation = CallCenterSimulation(start=START, **options)
    records: list[QueueLogRecord] = []
    until = START
    while until < START + seconds:
        previous, until = until, min(until + step, START + seconds)
        chunk = simulation.advance(until)
        assert all(previous < r.time <= until for r in chunk), "records outside (previous until, until]"
        records.extend(chunk)
    return records


def whole(later: float, earlier: float) -> int:
    return math.floor(later) - math.floor(earlier)


@dataclass
class CallSeen:
    entered: QueueLogRecord
    connect: QueueLogRecord | None = None
    end: QueueLogRecord | None = None


@dataclass
class Replay:
    """What a consumer knows after reading the records in order; asserts every rule on the way."""

    calls: dict[str, CallSeen] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # agent -> queues logged in
    paused: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # agent -> queues paused
    on_call: dict[str, str] = field(default_factory=dict)  # agent -> callid
    memberships: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def read(self, records: list[QueueLogRecord]) -> "Replay":
        last = -math.inf
        for r in records:
            assert r.time >= last, "records out of time order"
            last = r.time
            assert r.time == round(r.time, 3)
            interpret(r)  # the service's own reader understands every record
            if r.event in MEMBER_EVENTS:
                self.member_event(r)
            elif r.event in ("QUEUESTART", "CONFIGRELOAD"):
                assert (r.callid, r.queue, r.agent) == (NONE, NONE, NONE)
            else:
                self.call_event(r)
        return self

    def member_event(self, r: QueueLogRecord) -> None:
        assert r.callid == NONE and AGENT.match(r.agent), r
        agent, queue = r.agent, r.queue
        if r.event == "ADDMEMBER":
            assert queue not in self.members[agent], f"{agent} added twice to {queue}"
            assert r.data in (("",), ("PAUSED",))
            self.members[agent].add(queue)
            self.memberships[agent].add(queue)
            if r.data == ("PAUSED",):
                self.paused[agent].add(queue)
        elif r.event == "REMOVEMEMBER":
            assert queue in self.members[agent], f"{agent} removed from {queue} without being a member"
            assert agent not in self.on_call, f"{agent} logged off during a call"
            self.members[agent].discard(queue)
            self.paused[agent].discard(queue)
        elif r.event in ("PAUSEALL", "UNPAUSEALL"):
            assert queue == NONE and self.members[agent], f"{r.event} of {agent} who is not logged in"
            if r.event == "PAUSEALL":
                self.paused[agent] |= self.members[agent]
            else:
                self.paused[agent].clear()
        else:
            assert queue in self.members[agent], f"{r.event} of {agent} in {queue} without membership"
            if r.event == "PAUSE":
                assert queue not in self.paused[agent], f"{agent} paused twice in {queue}"
                self.paused[agent].add(queue)
            else:
                assert queue in self.paused[agent], f"{agent} unpaused in {queue} without a pause"
                self.paused[agent].discard(queue)

    def call_event(self, r: QueueLogRecord) -> None:
        assert UNIQUEID.match(r.callid), r
        if r.event == "ENTERQUEUE":
            assert r.callid not in self.calls, f"call id {r.callid} reused"
            assert r.agent == NONE and r.data[0] == "" and CALLERID.match(r.data[1]) and int(r.data[2]) >= 1
            self.calls[r.callid] = CallSeen(entered=r)
            return
        seen = self.calls.get(r.callid)
        assert seen is not None, f"{r.event} of {r.callid} before its ENTERQUEUE"
        entered = seen.entered
        assert r.queue == entered.queue, "a call changed queue"
        assert seen.end is None, f"{r.event} after the end of {r.callid}"
        origposition = entered.data[2]
        if r.event in ("RINGNOANSWER", "RINGCANCELED"):
            assert seen.connect is None and AGENT.match(r.agent) and int(r.data[0]) >= 0
        elif r.event == "CONNECT":
            agent = r.agent
            assert seen.connect is None, "answered twice"
            assert r.queue in self.members[agent], f"{agent} answered in {r.queue} while not logged in"
            assert r.queue not in self.paused[agent], f"{agent} answered in {r.queue} while paused"
            assert agent not in self.on_call, f"{agent} answered while on call {self.on_call.get(agent)}"
            holdtime, bridged, ringtime = r.data
            assert int(holdtime) == whole(r.time, entered.time)
            assert UNIQUEID.match(bridged) and bridged != r.callid
            assert 0 <= int(ringtime) <= int(holdtime)
            seen.connect = r
            self.on_call[agent] = r.callid
        elif r.event in CALL_ENDS:
            connect = seen.connect
            assert connect is not None, f"{r.event} of a call never answered"
            assert r.agent == connect.agent
            holdtime, calltime, position = r.data[-3:]
            assert int(holdtime) == int(connect.data[0])
            assert int(calltime) == whole(r.time, connect.time)
            assert position == origposition
            if r.event == "BLINDTRANSFER":
                assert len(r.data) == 5 and r.data[0] and r.data[1]
            elif r.event == "ATTENDEDTRANSFER":
                assert len(r.data) == 5 and r.data[0] == "BRIDGE"
            seen.end = r
            del self.on_call[r.agent]
        elif r.event in UNANSWERED:
            assert seen.connect is None, f"{r.event} after CONNECT"
            assert r.agent == NONE
            position, orig, waittime = r.data[-3:]
            if r.event == "EXITWITHKEY":
                assert len(r.data) == 4 and r.data[0]
            assert orig == origposition and 1 <= int(position) <= int(orig)
            assert int(waittime) == whole(r.time, entered.time)
            seen.end = r
        else:
            pytest.fail(f"unexpected event {r.event}")


def test_an_hour_of_default_traffic_keeps_every_rule():
    records = simulate(HOUR)
    replay = Replay().read(records)
    events = Counter(r.event for r in records)
    for event in ("QUEUESTART", "ADDMEMBER", "ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "COMPLETECALLER",
                  "RINGNOANSWER", "ABANDON", "PAUSE", "UNPAUSE", "BLINDTRANSFER", "ATTENDEDTRANSFER"):
        assert events[event] > 0, f"no {event} in an hour"
    assert {r.queue for r in records if r.event == "ENTERQUEUE"} == set(DEFAULT_QUEUES)
    assert 1 <= min(len(q) for q in replay.memberships.values())
    assert max(len(q) for q in replay.memberships.values()) <= 3
    assert len(replay.memberships) <= staffing(5.0, DEFAULT_QUEUES).operators


def test_operators_are_members_of_one_to_three_queues_and_log_in_only_there():
    simulation = CallCenterSimulation(seed=2, start=START, operators=24)
    replay = Replay().read(simulation.advance(START + 2 * HOUR))
    assert len(simulation.memberships) == 24
    assert all(1 <= len(queues) <= 3 for queues in simulation.memberships.values())
    for agent, queues in replay.memberships.items():
        assert queues <= set(simulation.memberships[agent])
    for queue in DEFAULT_QUEUES:
        assert sum(queue in queues for queues in simulation.memberships.values()) >= 2


def test_every_call_ends_exactly_once():
    end = START + 3 * HOUR
    records = simulate(end - START)
    replay = Replay().read(records)
    for callid, seen in replay.calls.items():
        if seen.entered.time < end - HOUR:  # well past queue timeout and talk time
            assert seen.end is not None, f"{callid} never ended"
    ended = Counter(r.callid for r in records if r.event in CALL_ENDS | UNANSWERED)
    assert max(ended.values()) == 1


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    rate=st.floats(0.5, 12.0),
    operators=st.integers(4, 40),
    queues=st.lists(st.sampled_from(["support", "drivers", "vip", "lost-items", "taxi", "b2b"]),
                    min_size=1, max_size=5, unique=True),
)
@pytest.mark.slow
def test_any_call_center_keeps_every_rule(seed, rate, operators, queues):
    records = simulate(HOUR, step=37.0, seed=seed, rate=rate, operators=operators, queues=queues)
    replay = Replay().read(records)
    assert {r.queue for r in records if r.event == "ENTERQUEUE"} <= set(queues)
    assert all(1 <= len(q) <= 3 for q in replay.memberships.values())


def test_callers_leave_a_queue_nobody_staffs():
    records = simulate(10 * HOUR, seed=3, rate=1.0, operators=1)  # longer than its operator's shift
    Replay().read(records)
    events = Counter(r.event for r in records)
    assert events["EXITEMPTY"] > 0
    assert events["REMOVEMEMBER"] > 0


def test_overloaded_queues_time_out_and_callers_press_keys():
    records = simulate(4 * HOUR, seed=5, rate=3.0, operators=4)
    Replay().read(records)
    events = Counter(r.event for r in records)
    assert events["EXITWITHTIMEOUT"] > 0 and events["ABANDON"] > 0 and events["EXITWITHKEY"] > 0


def test_same_seed_same_traffic():
    assert simulate(HOUR, seed=42) == simulate(HOUR, seed=42)
    assert simulate(600, seed=42) != simulate(600, seed=43)


@settings(max_examples=15, deadline=None)
@given(steps=st.lists(st.floats(0.001, 400.0), min_size=1, max_size=40), seed=st.integers(0, 1000))
def test_how_time_is_stepped_does_not_change_the_traffic(steps, seed):
    stepped = CallCenterSimulation(seed=seed, start=START)
    records, until = [], START
    for step in steps:
        until += step
        records.extend(stepped.advance(until))
    assert records == CallCenterSimulation(seed=seed, start=START).advance(until)


def test_going_back_in_time_returns_nothing():
    simulation = CallCenterSimulation(seed=1, start=START)
    assert simulation.advance(START + 600)
    assert simulation.advance(START + 300) == []
    assert simulation.advance(START) == []
    assert all(r.time > START + 600 for r in simulation.advance(START + 900))


@pytest.mark.slow
@pytest.mark.parametrize("rate", [1.0, 5.0, 20.0])
def test_event_rate_follows_the_requested_rate(rate):
    hours = 4 if rate <= 5 else 1.5
    records = CallCenterSimulation(seed=11, start=START, rate=rate).advance(START + hours * HOUR)
    achieved = len(records) / (hours * HOUR)
    assert rate * 0.99 <= achieved <= rate * 1.01, f"asked {rate} ev/s, got {achieved:.2f}"


@pytest.mark.slow
@pytest.mark.parametrize("rate", [2.0, 300.0])
def test_the_records_clock_stays_within_seconds_of_the_rate(rate):
    """The shell sends record n at n/rate s; the model keeps record n's time close to that."""
    simulation = CallCenterSimulation(seed=12, start=START, rate=rate)
    count, worst = 0, 0.0
    for second in range(10, (600 if rate > 5 else 3600) + 1, 10):
        count += len(simulation.advance(START + second))
        worst = max(worst, abs(count / rate - second))
    assert worst < (20.0 if rate < 5 else 5.0), f"record times off by {worst:.1f} s"


# --- pacing: how many records are due at each moment, given a clock ----------------------


def sent_by(pacer: Pacer, clock: list[float]) -> list[int]:
    """Drive `pacer` along `clock` as the shell does: send what is due at each reading."""
    totals = []
    for now in clock:
        pacer.mark_sent(pacer.due(now))
        totals.append(pacer.sent)
    return totals


@pytest.mark.parametrize("rate", [1.0, 5.0, 300.0, 3000.0, 12345.6], ids=lambda r: f"{r:g}/s")
def test_the_pacer_owes_exactly_the_rate_at_every_reading(rate):
    pacer = Pacer(rate=rate, started=100.0)
    clock = [100.0 + 0.02 * k for k in range(1, 3001)]  # a minute of ticks
    for now, total in zip(clock, sent_by(pacer, clock)):
        assert total == math.floor(rate * (now - 100.0) + 1e-9)


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(1.0, 3000.0), gaps=st.lists(st.floats(0.0, 0.7), min_size=50, max_size=300))
def test_any_10_s_window_holds_the_rate_within_5_percent_whatever_the_ticks(rate, gaps):
    """Late ticks (a GC pause, a slow send) are caught up at the next one."""
    pacer = Pacer(rate=rate, started=0.0)
    clock = list(itertools.accumulate(gaps))
    totals = sent_by(pacer, clock)
    for i, a in enumerate(clock):
        j = bisect.bisect_left(clock, a + 10.0)  # the first reading 10 s or more later
        if j < len(clock):
            span = clock[j] - a
            assert abs(totals[j] - totals[i] - rate * span) <= max(0.05 * rate * span, 1.0)


def test_the_pacer_waits_until_the_next_record_and_says_how_far_behind_it_is():
    pacer = Pacer(rate=4.0, started=10.0)
    assert pacer.due(10.0) == 0 and pacer.wait(10.0) == pytest.approx(0.25)
    assert pacer.due(10.3) == 1
    pacer.mark_sent(1)
    assert pacer.wait(10.3) == pytest.approx(0.2) and pacer.behind(10.3) == 0.0
    assert pacer.due(13.0) == 11 and pacer.behind(13.0) == pytest.approx(2.75)
    pacer.mark_sent(11)
    assert pacer.due(13.0) == 0 and pacer.wait(13.0) == pytest.approx(0.25)


# --- realism at any rate: long offline runs, measured as a consumer would ------------------


@dataclass
class Shift:
    """What a supervisor's report says of a stretch of records."""

    entered: int
    answered: int
    abandoned: int
    answered_within_20s: int
    talk_s: list[int]
    occupancy: float  # time on calls over time logged in
    calls_in_progress: list[int]  # sampled every minute


def shift_report(rate: float, minutes: float, seed: int = 21, skip_minutes: float = 10.0) -> Shift:
    simulation = CallCenterSimulation(seed=seed, start=START, rate=rate)
    entered = answered = abandoned = fast = 0
    talk: list[int] = []
    in_progress: list[int] = []
    logged_in: dict[str, int] = defaultdict(int)  # agent -> queues it is a member of now
    online_s = 0.0
    for minute in range(1, int(minutes) + 1):
        counted = minute > skip_minutes  # after the start of the shift
        for r in simulation.advance(START + 60 * minute):
            if r.event == "ADDMEMBER":
                logged_in[r.agent] += 1
            elif r.event == "REMOVEMEMBER":
                logged_in[r.agent] -= 1
            elif not counted:
                continue
            elif r.event == "ENTERQUEUE":
                entered += 1
            elif r.event == "CONNECT":
                answered += 1
                fast += int(r.data[0]) <= 20
            elif r.event == "ABANDON":
                abandoned += 1
            elif r.event in CALL_ENDS:
                talk.append(int(r.data[-2]))
        in_progress.append(simulation.calls_in_progress)
        if counted:
            online_s += 60.0 * sum(1 for n in logged_in.values() if n > 0)
    return Shift(entered, answered, abandoned, fast, talk, sum(talk) / online_s, in_progress)


@pytest.mark.slow
@pytest.mark.parametrize(("rate", "minutes"), [(5.0, 240), (300.0, 30)], ids=["5/s", "300/s"])
def test_a_long_shift_looks_like_a_call_center_at_any_rate(rate, minutes):
    shift = shift_report(rate, minutes)
    aht_min = statistics.mean(shift.talk_s) / 60
    assert 2.0 <= aht_min <= 5.0, f"talk time {aht_min:.1f} min"
    assert 1.5 <= statistics.median(shift.talk_s) / 60 <= 4.5
    assert 0.5 <= shift.occupancy <= 0.92, f"occupancy {shift.occupancy:.2f}"
    assert 0.002 <= shift.abandoned / shift.entered <= 0.10, f"abandon rate {shift.abandoned / shift.entered:.3f}"
    assert 0.70 <= shift.answered_within_20s / shift.answered <= 0.995, "service level (20 s)"
    # calls in progress: about call rate x (wait + talk), flat once the shift has started
    bound = 1.5 * staffing(rate, queue_names(rate)).call_rate * 240.0
    later = shift.calls_in_progress[len(shift.calls_in_progress) // 2:]
    assert max(shift.calls_in_progress) <= bound, (max(shift.calls_in_progress), bound)
    if minutes >= 30:
        assert max(later) <= 1.2 * statistics.mean(later), "calls in progress keep climbing"


@pytest.mark.slow
def test_the_start_of_a_3000_per_s_shift_keeps_calls_in_progress_bounded():
    """Ten times the 300/s center (300 queues, a quarter of a million operators): its first
    three minutes, the logins and the first calls (a longer run takes minutes of CPU)."""
    simulation = CallCenterSimulation(seed=5, start=START, rate=3000.0)
    assert len(simulation.queues) == 300 and simulation.operators > 200_000
    count, in_progress = 0, []
    for minute in range(1, 4):
        count += len(simulation.advance(START + 60 * minute))
        in_progress.append(simulation.calls_in_progress)
    assert abs(count - 3000.0 * 180) <= 0.01 * 3000.0 * 180
    assert in_progress == sorted(in_progress), "the shift fills up"
    assert in_progress[-1] <= 1.5 * simulation.call_rate * 240.0


def test_operators_and_queues_grow_with_the_rate_and_can_be_given():
    small, big = staffing(5.0, queue_names(5.0)), staffing(300.0, queue_names(300.0))
    assert queue_names(5.0) == list(DEFAULT_QUEUES)
    assert len(queue_names(300.0)) == 30 and len(queue_names(3000.0)) == 300
    assert len(set(queue_names(3000.0))) == 300
    assert 300 <= small.operators <= 600, "about 1.3 calls/s of 3-minute calls"
    assert 50 <= big.operators / small.operators <= 70 and 50 <= big.call_rate / small.call_rate <= 70
    given_ = CallCenterSimulation(seed=1, start=START, rate=300.0, operators=40, queues=["a", "b"])
    assert given_.operators == 40 and given_.queues == ["a", "b"]


@pytest.mark.slow
def test_several_processes_have_disjoint_call_ids_and_operators():
    parts = [CallCenterSimulation(seed=9 + p, start=START, rate=20.0, process=p, processes=3) for p in range(3)]
    agents = [set(part.memberships) for part in parts]
    assert not (agents[0] & agents[1] or agents[1] & agents[2] or agents[0] & agents[2])
    callids = [{r.callid for r in part.advance(START + 1800) if r.callid != NONE} for part in parts]
    assert all(callids) and not (callids[0] & callids[1] or callids[1] & callids[2] or callids[0] & callids[2])


def test_default_traffic_looks_alive_with_trouble_now_and_then():
    records = simulate(2 * HOUR, step=1.0, seed=7)
    waiting: set[str] = set()
    samples, minute_max_wait = [], defaultdict(int)
    by_second = defaultdict(list)
    for r in records:
        by_second[math.ceil(r.time - START)].append(r)
    for second in range(1, int(2 * HOUR) + 1):
        for r in by_second.get(second, ()):
            if r.event == "ENTERQUEUE":
                waiting.add(r.callid)
            elif r.event == "CONNECT" or r.event in UNANSWERED:
                waiting.discard(r.callid)
                wait = int(r.data[0]) if r.event == "CONNECT" else int(r.data[-1])
                key = (r.queue, second // 60)
                minute_max_wait[key] = max(minute_max_wait[key], wait)
        samples.append(len(waiting))
    assert 1 <= statistics.median(samples) <= 10, "a few calls waiting most of the time"
    # a caller or two waits 20 s most minutes (service level about 90 %), half a minute now and then
    troubled_minutes = {minute for (_, minute), wait in minute_max_wait.items() if wait > 30}
    assert troubled_minutes, "no queue ever waited over 30 s"
    assert len(troubled_minutes) < 0.6 * 120, "trouble all the time"


def test_wire_form_decodes_to_the_same_record_and_keys_by_call_or_agent():
    records = simulate(600)
    for r in records:
        assert decode(record_json(r)) == r
        assert record_key(r) == (r.callid if r.callid != NONE else r.agent).encode()
    added = next(r for r in records if r.event == "ADDMEMBER")
    assert record_key(added) == added.agent.encode()


def test_command_line_defaults():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = parser.parse_args([])
    assert (defaults.rate, defaults.duration, defaults.seed) == (5.0, None, None)
    assert (defaults.operators, defaults.queues, defaults.processes) == (None, None, 1)
    assert (defaults.operator_status, defaults.sip_drops) == (True, 0.05)
    given_ = parser.parse_args(["--rate", "12.5", "--duration", "60", "--seed", "9", "--operators", "80",
                                "--queues", "6", "--processes", "2"])
    assert (given_.rate, given_.duration, given_.seed) == (12.5, 60.0, 9)
    assert (given_.operators, given_.queues, given_.processes) == (80, 6, 2)
    assert parser.parse_args(["--queues", "taxi,b2b"]).queues == ["taxi", "b2b"]
    assert parser.parse_args(["--no-operator-status"]).operator_status is False
    assert parser.parse_args(["--sip-drops", "0.2"]).sip_drops == 0.2


class FakeProducer:
    """Stands in for AIOKafkaProducer: keeps what was sent and how it was shut down."""

    instances: list["FakeProducer"] = []

    def __init__(self, **config) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.started = self.flushed = self.stopped = False
        FakeProducer.instances.append(self)

    async def start(self) -> None:
        self.started = True

    async def send(self, topic, value=None, key=None):
        import asyncio

        self.sent.append((topic, value, key))
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    async def flush(self) -> None:
        self.flushed = True

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def producer(monkeypatch) -> type[FakeProducer]:
    import dev.simulate

    FakeProducer.instances = []
    monkeypatch.setattr(dev.simulate, "AIOKafkaProducer", FakeProducer)
    return FakeProducer


def test_run_sends_current_records_for_the_duration_then_flushes(producer, capsys):
    import asyncio
    import time

    from app.settings import Settings
    from dev.simulate import run

    config = Settings(topic_qapp_events="qapp-test", kafka_bootstrap="broker:9092")
    before = time.time()
    sent = asyncio.run(run(config, rate=200.0, duration=0.5, seed=4))
    (fake,) = producer.instances
    assert fake.config == {"bootstrap_servers": "broker:9092", "linger_ms": 5}
    assert fake.started and fake.flushed and fake.stopped
    assert sent == len(fake.sent) == 100  # the pacer's count for half a second at 200/s
    records = [decode(value) for _, value, _ in fake.sent]
    assert {topic for topic, _, _ in fake.sent} == {"qapp-test"}
    assert [key for _, _, key in fake.sent] == [record_key(r) for r in records]
    assert before < records[0].time and records[-1].time <= time.time() + 5
    model = CallCenterSimulation(seed=4, start=records[0].time - 0.001, rate=200.0)
    assert records == model.advance(records[-1].time)[: len(records)]
    assert "simulate: done: 100 events" in capsys.readouterr().err


def test_cancelled_run_still_flushes_and_stops_the_producer(producer):
    import asyncio

    from app.settings import Settings
    from dev.simulate import run

    async def cancel_soon() -> None:
        task = asyncio.ensure_future(run(Settings(), rate=5.0, duration=None, seed=1, speed=100.0, progress=False))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_soon())
    (fake,) = producer.instances
    assert fake.sent and fake.flushed and fake.stopped


@pytest.mark.slow
def test_run_with_loss_drops_that_share_of_the_events(producer):
    import asyncio

    from app.settings import Settings
    from dev.simulate import run

    config = Settings(topic_qapp_events="qapp-test", kafka_bootstrap="broker:9092")
    whole = asyncio.run(run(config, rate=2000.0, duration=0.5, seed=4, progress=False))
    lossy = asyncio.run(run(config, rate=2000.0, duration=0.5, seed=4, progress=False, loss=0.25))
    delivered = [len(fake.sent) for fake in producer.instances]
    assert whole == lossy == 1000 and delivered[0] == 1000 and 600 < delivered[1] < 900
    with pytest.raises(ValueError):
        asyncio.run(run(config, rate=20.0, duration=0.5, seed=4, loss=1.0))


def test_run_with_ivr_orders_sends_their_commands_to_ivr_commands_beside_the_rate(producer, capsys):
    import asyncio

    import orjson

    from app.settings import Settings
    from dev.simulate import run

    config = Settings(topic_qapp_events="qapp-test", kafka_bootstrap="broker:9092")
    sent = asyncio.run(run(config, rate=200.0, duration=0.5, seed=4, ivr_orders=40.0))
    (fake,) = producer.instances
    by_topic: dict = {}
    for topic, value, key in fake.sent:
        by_topic.setdefault(topic, []).append((key, value))
    assert sent == len(by_topic["qapp-test"]) == 100  # the rate is the queue_log events'
    ivr = by_topic["ivr-commands"]
    assert ivr and all(orjson.loads(v)["kind"] in ("bind_inbound", "route_to_ivr") for _, v in ivr)
    assert "IVR commands" in capsys.readouterr().err


@pytest.mark.slow
def test_ivr_traffic_is_an_order_life_the_ivr_domain_accepts():
    from dev.ivr_traffic import IvrTraffic
    from tables.ivr.commands import BindInbound, RouteToIvr, RouteToOperator, command_key, parse_command

    start = 1_800_000_000.0
    traffic = IvrTraffic(seed=3, orders_per_s=2.0, start=start)
    records = traffic.due(start + 3 * 3600)  # three hours of orders
    commands = [parse_command(value, "RU", 86400, 2 * 86400) for _, value in records]
    assert [key for key, _ in records] == [command_key(c).encode() for c in commands]  # keyed like the web writes them
    assert [c.at for c in commands] == sorted(c.at for c in commands)
    orders = {c.order_id for c in commands if isinstance(c, BindInbound)}
    assert 2 * 3 * 3600 * 0.9 < len(orders) < 2 * 3 * 3600 * 1.1
    routed = {c.order_id: c for c in commands if isinstance(c, RouteToIvr)}
    finished = {c.order_id: c for c in commands if isinstance(c, RouteToOperator)}
    assert set(routed) == orders and set(finished) < set(routed)  # some finishes are never reported
    early = [o for o in routed if routed[o].at < start + 2 * 3600]  # old enough to have finished
    assert 0.9 < sum(o in finished for o in early) / len(early) < 0.99
    assert all(finished[o].at > routed[o].at for o in finished)
    late = [o for o in finished if finished[o].at > routed[o].expires_at]  # outlived the rule
    assert late
    assert traffic.due(start + 3 * 3600) == []  # nothing twice


def test_run_with_operator_status_sends_the_operators_crm_side_beside_the_rate(producer, capsys, monkeypatch):
    import asyncio

    import orjson

    from app.settings import Settings
    from dev.simulate import run

    monkeypatch.setenv("TOPIC_OPERATOR_COMMANDS", "t.operator-commands")
    monkeypatch.setenv("TOPIC_SIP_REGISTRATIONS", "t.sip-registrations")
    config = Settings(topic_qapp_events="qapp-test", kafka_bootstrap="broker:9092")
    sent = asyncio.run(run(config, rate=200.0, duration=0.5, seed=4, operator_status=True))
    (fake,) = producer.instances
    by_topic: dict = defaultdict(list)
    for topic, value, key in fake.sent:
        by_topic[topic].append((key, orjson.loads(value)))
    assert sent == len(by_topic["qapp-test"]) == 100  # the rate is the queue_log events'
    assert set(by_topic) == {"qapp-test", "t.operator-commands", "t.sip-registrations"}
    logins = {r["agent"]: r["time"] for _, r in by_topic["qapp-test"] if r["event"] == "ADDMEMBER"}
    registered = {r["operator"]: r for key, r in by_topic["t.sip-registrations"] if key == r["operator"].encode()}
    online = {r["operator"]: r for key, r in by_topic["t.operator-commands"] if key == r["operator"].encode()}
    assert logins and set(logins) <= set(registered) and set(logins) <= set(online)
    assert all(registered[a]["registered"] and registered[a]["time"] <= t for a, t in logins.items())
    assert all(online[a]["status"] in ("ONLINE", "PAUSE") and online[a]["time"] <= t for a, t in logins.items())
    first_sent: dict = {}
    for n, (topic, value, key) in enumerate(fake.sent):
        first_sent.setdefault((topic, key), n)
    for agent in logins:  # the softphone and the CRM go first, then Asterisk adds the member
        added = first_sent["qapp-test", agent.encode()]
        assert first_sent["t.sip-registrations", agent.encode()] < added
        assert first_sent["t.operator-commands", agent.encode()] < added
    assert "status commands to t.operator-commands" in capsys.readouterr().err


@pytest.mark.parametrize("flags, crm", [([], True), (["--no-operator-status"], False)], ids=["default", "switched-off"])
def test_the_command_line_sends_the_operators_crm_side_unless_switched_off(producer, monkeypatch, flags, crm):
    from app.settings import Settings
    from dev.simulate import main

    monkeypatch.delenv("TOPIC_OPERATOR_COMMANDS", raising=False)
    monkeypatch.delenv("TOPIC_SIP_REGISTRATIONS", raising=False)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--rate", "200", "--duration", "0.3", "--seed", "4", "--ivr-orders", "0", "--chats", "0",
                              "--driver-statuses", "0", *flags])
    assert main(args, Settings(topic_qapp_events="qapp-test")) == 0
    topics = {topic for topic, _, _ in producer.instances[-1].sent}
    assert topics == ({"qapp-test", "operator-commands", "sip-registrations"} if crm else {"qapp-test"})


@pytest.mark.parametrize("flags, drivers", [([], True), (["--driver-statuses", "0"], False)],
                         ids=["default", "switched-off"])
def test_the_command_line_sends_drivers_unless_switched_off(producer, monkeypatch, flags, drivers):
    from app.settings import Settings
    from dev.simulate import main

    for name in ("TOPIC_CONTRACTOR_STATUS", "TOPIC_DRIVER_POSITIONS", "TOPIC_DRIVER_PROFILES"):
        monkeypatch.delenv(name, raising=False)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--rate", "20", "--duration", "0.5", "--seed", "4", "--ivr-orders", "0", "--chats", "0",
                              "--no-operator-status", *flags])
    assert main(args, Settings(topic_qapp_events="qapp-test")) == 0
    topics = {topic for topic, _, _ in producer.instances[-1].sent}
    driver_topics = {"contractor-status", "driver-positions", "driver-profiles"}
    assert (driver_topics <= topics) if drivers else not (driver_topics & topics)


@pytest.mark.parametrize("flags, chats", [(["--chats", "50"], True), (["--chats", "0"], False)],
                         ids=["on", "switched-off"])
def test_the_command_line_sends_support_chats_unless_switched_off(producer, monkeypatch, flags, chats):
    from app.settings import Settings
    from dev.simulate import main

    for name in ("TOPIC_CHAT_EVENTS", "TOPIC_SUPPORT_QUEUE", "TOPIC_OPERATOR_EVENTS"):
        monkeypatch.delenv(name, raising=False)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).chats is None  # the default: one per 1,000 events/s, at least 0.05
    args = parser.parse_args(["--rate", "20", "--duration", "0.5", "--seed", "4", "--ivr-orders", "0",
                              "--driver-statuses", "0", "--no-operator-status", *flags])
    assert main(args, Settings(topic_qapp_events="qapp-test")) == 0
    topics = {topic for topic, _, _ in producer.instances[-1].sent}
    assert ({"chat_events", "operator_events"} <= topics) if chats else not ({"chat_events", "operator_events"} & topics)


def test_a_shift_lasts_about_eight_hours_with_one_lunch_in_its_middle():
    """What a manager recognises: logged in for a working day, lunch once, half-way through."""
    records = simulate(20 * HOUR, step=60.0, seed=4, rate=1.0, operators=12)
    start = records[0].time
    members: dict[str, int] = defaultdict(int)
    since: dict[str, float] = {}
    lunches: dict[str, list[float]] = defaultdict(list)
    shifts = []
    for r in records:
        if r.event == "ADDMEMBER":
            if not members[r.agent]:
                since[r.agent] = r.time
                lunches[r.agent] = []
            members[r.agent] += 1
        elif r.event == "REMOVEMEMBER":
            members[r.agent] -= 1
            if not members[r.agent] and r.agent in since:
                shifts.append((r.time - since[r.agent], [t - since[r.agent] for t in lunches[r.agent]]))
        elif r.event in ("PAUSE", "PAUSEALL") and r.data[:1] == ("lunch",) and r.agent in since:
            if not lunches[r.agent] or r.time - lunches[r.agent][-1] > 60:  # a per-queue PAUSE per queue: one lunch
                lunches[r.agent].append(r.time)
    whole = [(length, lunch) for length, lunch in shifts if since and length > 0]
    assert len(whole) >= 10 and records[-1].time - start >= 19 * HOUR
    assert 7 * HOUR <= statistics.mean(length for length, _ in whole) <= 9 * HOUR
    assert all(len(lunch) == 1 and 3.4 * HOUR <= lunch[0] <= 5.5 * HOUR for length, lunch in whole if length > 5.5 * HOUR)
