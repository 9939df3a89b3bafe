"""Traffic simulator: a call center that writes Asterisk queue_log records to `qapp-events`.

`CallCenterSimulation` is the pure core: a seeded discrete-event model of queues, operators
and callers that returns the queue_log records Asterisk would write, in time order, for any
stretch of simulated time. It never looks at the wall clock; the same seed and start give
the same records however `advance` is stepped. Its size follows the event rate asked for
(`staffing`): more traffic means more queues and more operators, never shorter calls, so
talk times, waits, occupancy and abandon rates look the same at 1 and at 3,000 events/s.

`run` is the thin shell behind `python -m app simulate`: a `Pacer` says how many records
are due at each moment, the model is advanced until it has them, and they are produced to
Kafka; `--processes N` runs N such shells with disjoint call ids and operators. Beside the
queue_log it sends the operators' CRM statuses and softphone registrations
(dev/operator_traffic.py) and passengers' IVR orders (dev/ivr_traffic.py).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import heapq
import itertools
import math
import multiprocessing
import random
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from app.settings import Settings
from dev.chat_traffic import ChatTraffic
from dev.driver_traffic import DriverTraffic
from dev.ivr_traffic import IvrTraffic
from dev.operator_traffic import SIP_DROP_P, OperatorTraffic
from tables.callcenter.events import NONE, QueueLogRecord
from tables.callcenter.queue_log import to_json
from tables.chat.settings import chat_settings
from tables.deptrans.settings import deptrans_settings
from tables.ivr.settings import ivr_settings

__all__ = [
    "CallCenterSimulation", "DEFAULT_QUEUES", "DEFAULT_RATE", "MAX_RATE_PER_PROCESS", "OperatorObserver", "Pacer", "Staffing",
    "add_arguments", "main", "queue_names", "record_json", "record_key", "run", "staffing",
]

DEFAULT_QUEUES = ("support", "drivers", "vip", "lost-items")
DEFAULT_RATE = 5.0  # queue_log events per second, all queues together
EVENTS_PER_QUEUE_S = 10.0  # beyond the first four, one more queue for every 10 events/s
MAX_RATE_PER_PROCESS = 3000.0  # what one process model + producer sustains on a 2-core machine


@dataclass(frozen=True, slots=True)
class QueueProfile:
    """How one queue behaves: its share of the traffic and its callers' manners."""

    share: float  # fraction of all arriving calls, before bursts
    priority: int  # Asterisk queue weight: higher is served first by shared members
    timeout_s: float  # queue timeout: EXITWITHTIMEOUT when the caller waited this long
    patience_median_s: float  # callers abandon after a lognormal wait around this
    wrapup_s: float  # Asterisk wrapuptime: a member is not rung this long after a call
    key_exit_p: float = 0.0  # chance a caller presses the exit key (EXITWITHKEY) while waiting


PROFILES = {
    "support": QueueProfile(share=0.40, priority=0, timeout_s=300.0, patience_median_s=75.0, wrapup_s=20.0),
    "drivers": QueueProfile(share=0.30, priority=0, timeout_s=180.0, patience_median_s=60.0, wrapup_s=10.0),
    "vip": QueueProfile(share=0.10, priority=10, timeout_s=600.0, patience_median_s=120.0, wrapup_s=30.0),
    "lost-items": QueueProfile(share=0.20, priority=0, timeout_s=240.0, patience_median_s=90.0, wrapup_s=30.0,
                               key_exit_p=0.03),
}
GENERIC_PROFILE = QueueProfile(share=0.25, priority=0, timeout_s=300.0, patience_median_s=75.0, wrapup_s=15.0)

TALK_MEDIAN_S = 170.0  # lognormal, sigma 0.5: mostly 1.5 to 6 minutes, mean about 3 minutes
TALK_SIGMA = 0.5
RING_ANSWER_S = (1.0, 6.0)  # how long a phone rings before the operator picks up
RING_TIMEOUT_S = 15.0  # member timeout: RINGNOANSWER after this long
RETRY_S = 5.0  # Asterisk retry: a caller waits this long before ringing again after RINGNOANSWER
NO_ANSWER_P = 0.05

END_KINDS = (("COMPLETEAGENT", 0.46), ("COMPLETECALLER", 0.44), ("BLINDTRANSFER", 0.06), ("ATTENDEDTRANSFER", 0.04))
TRANSFER_TARGETS = (("2000", "from-internal"), ("2100", "billing"), ("700", "parkedcalls"), ("5555", "ivr-survey"))
MEMBERSHIP_SIZES = ((1, 0.5), (2, 0.35), (3, 0.15))  # how many queues an operator answers

PAUSE_REASONS = (  # reason, weight, median length s
    ("break", 0.34, 300.0),
    ("training", 0.06, 900.0),
    ("toilet", 0.20, 180.0),
    ("after-call work", 0.22, 60.0),
    ("", 0.15, 120.0),
)
PAUSE_EVERY_S = 18 * 60.0  # mean time between an unpause and the next pause
PAUSEALL_P = 0.25
PAUSE_ONE_QUEUE_P = 0.30  # a per-queue pause covers one queue only, else every queue
PAUSED_AT_LOGIN_P = 0.15
LOGGED_IN_AT_START_P = 0.9
SHIFT_MEAN_S = 8 * 3600.0  # a shift: this long logged in (give or take SHIFT_SPREAD_S), then a log-off
SHIFT_SPREAD_S = 40 * 60.0
LUNCH_AFTER_S = (3.5 * 3600.0, 4.5 * 3600.0)  # one lunch per shift, this long after the login
LUNCH_S = 1800.0  # its median length
OFFLINE_S = (5 * 60.0, 30 * 60.0)
CONFIGRELOAD_EVERY_S = 30 * 60.0
LUNCH = ("lunch", 0.0, LUNCH_S)

# Bursts: now and then one queue gets several times its traffic for a few minutes.
BURST_GAP_S = 12 * 60.0  # mean quiet time between two bursts
BURST_FACTOR = (2.5, 4.0)
BURST_LENGTH_S = (90.0, 240.0)

# Staffing: how many operators carry a call rate, and how many events a call and an operator
# make (measured on long runs of this model; `_steer` corrects what remains).
TARGET_OCCUPANCY = 0.88  # busy (ringing, talking, wrap-up) share of the operators ready to take calls
READY_FRACTION = 0.71  # of the staff: logged in, not paused, on average
ANSWERED_FRACTION = 0.97
EVENTS_PER_CALL = 3.03
MEMBER_EVENTS_PER_OPERATOR_S = 7.7 / 3600.0
STEER_S = 10.0  # the arrival rate is corrected to make up an event surplus or deficit in about this long
STEER_RANGE = (0.1, 3.0)
ARRIVAL_TICK_S = 1.0  # the arrival rate is looked at again at least this often


def _whole_seconds(later: float, earlier: float) -> int:
    """A duration as Asterisk writes it: the difference of two time(NULL) readings."""
    return math.floor(later) - math.floor(earlier)


def _profile(queue: str) -> QueueProfile:
    """Queues beyond the first four are named after them (`support-2`) and behave alike."""
    base, _, number = queue.rpartition("-")
    return PROFILES.get(queue) or (PROFILES.get(base, GENERIC_PROFILE) if number.isdigit() else GENERIC_PROFILE)


def queue_names(rate: float, count: Optional[int] = None) -> list[str]:
    """The queues of a call center making `rate` events/s (or `count` of them): the four
    default ones, then more alike."""
    if count is None:
        count = max(len(DEFAULT_QUEUES), math.ceil(rate / EVENTS_PER_QUEUE_S))
    return [DEFAULT_QUEUES[i % 4] if i < 4 else f"{DEFAULT_QUEUES[i % 4]}-{i // 4 + 1}" for i in range(count)]


@dataclass(frozen=True, slots=True)
class Staffing:
    """The size of a call center: calls per second and the operators who carry them."""

    call_rate: float  # calls per second entering the queues, on average over bursts
    operators: int


def _mean_handle_s(queues: Sequence[str]) -> float:
    """Ringing, talk and wrap-up of an answered call, averaged over the queues' shares."""
    total = sum(_profile(q).share for q in queues)
    wrapup = sum(_profile(q).share * _profile(q).wrapup_s for q in queues) / total
    ringing = sum(RING_ANSWER_S) / 2 + NO_ANSWER_P * RING_TIMEOUT_S
    return ringing + TALK_MEDIAN_S * math.exp(TALK_SIGMA**2 / 2) + wrapup


def staffing(rate: float, queues: Sequence[str], operators: Optional[int] = None) -> Staffing:
    """How many calls and operators make `rate` events/s with realistic talk times and occupancy.

    Every call makes `EVENTS_PER_CALL` events and every operator `MEMBER_EVENTS_PER_OPERATOR_S`;
    the staff is what keeps the ready operators `TARGET_OCCUPANCY` busy. A given number of
    operators is kept, and the calls make up the rest of the rate (at least a fifth of it).
    """
    per_call_staff = ANSWERED_FRACTION * _mean_handle_s(queues) / (TARGET_OCCUPANCY * READY_FRACTION)
    if operators is None:
        call_rate = rate / (EVENTS_PER_CALL + per_call_staff * MEMBER_EVENTS_PER_OPERATOR_S)
        operators = max(2, math.ceil(call_rate * per_call_staff))
    else:
        call_rate = max(rate - operators * MEMBER_EVENTS_PER_OPERATOR_S, 0.2 * rate) / EVENTS_PER_CALL
    return Staffing(call_rate=call_rate, operators=operators)


class OperatorObserver(Protocol):
    """Told what each operator does, at the moment the simulation writes it to the queue_log
    (dev/operator_traffic.py tells the CRM side of it)."""

    def logged_in(self, at: float, agent: str, paused: bool) -> None: ...

    def paused(self, at: float, agent: str, reason: str) -> None: ...

    def unpaused(self, at: float, agent: str) -> None: ...

    def logged_off(self, at: float, agent: str) -> None: ...

    def ready(self, at: float, agent: str) -> None:
        """The operator's wrap-up after a call ended: ready for the next (no queue_log line)."""


# operator states
OFFLINE, READY, RINGING, TALKING, WRAPUP = "offline", "ready", "ringing", "talking", "wrap-up"


@dataclass(slots=True, eq=False)
class _Call:
    callid: str
    queue: str
    entered: float
    origposition: int
    state: str = "waiting"  # waiting | ringing | talking | done
    agent: str = ""
    ring_started: float = 0.0
    next_try: float = 0.0  # retry delay after a RINGNOANSWER
    connected: float = 0.0
    holdtime: int = 0
    attempt: int = 0  # bumped on every ring so stale ring outcomes are dropped


@dataclass(slots=True, eq=False)
class _Operator:
    index: int
    agent: str
    queues: tuple[str, ...]
    state: str = OFFLINE
    session: int = 0  # bumped on every login so actions planned for an old session are dropped
    version: int = 0  # bumped whenever it stops being ready, so its places in the free pools go stale
    paused: frozenset[str] = frozenset()
    call: Optional[_Call] = None  # ringing or talking
    last_call_end: float = 0.0


class CallCenterSimulation:
    """A seeded call center: `advance(until)` returns the queue_log records of (previous until, until].

    `rate` is the events/s it aims at; queues and operators follow from it unless given.
    `process`/`processes` carve disjoint call ids and agent numbers for one of several producers.
    `observer` is told every login, pause, unpause and log-off; it never changes the records.
    """

    def __init__(
        self,
        seed: int,
        start: float,
        queues: Optional[Sequence[str]] = None,
        operators: Optional[int] = None,
        rate: float = DEFAULT_RATE,
        process: int = 0,
        processes: int = 1,
        observer: Optional[OperatorObserver] = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if operators is not None and operators < 1:
            raise ValueError("at least one operator is needed")
        if not 0 <= process < processes:
            raise ValueError("process must be in [0, processes)")
        names = list(queues) if queues else queue_names(rate)
        if len(set(names)) != len(names):
            raise ValueError("queue names must be unique")
        self._rng = random.Random(seed)
        self._start = round(start, 3)
        self._until = self._start
        self._agenda: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._records: list[QueueLogRecord] = []
        self._emitted = 0
        self._processes = processes
        self._uniqueid_seq = self._rng.randint(100, 9000) * processes + process
        self._observer = observer

        self.rate = rate
        self.profiles = {name: _profile(name) for name in names}
        total_share = sum(p.share for p in self.profiles.values())
        self._shares = {name: p.share / total_share for name, p in self.profiles.items()}
        size = staffing(rate, names, operators)
        self.call_rate = size.call_rate
        self._operators = self._staff(size.operators, process, processes)
        self._by_agent = {op.agent: op for op in self._operators}
        self._waiting: dict[str, dict[_Call, None]] = {name: {} for name in names}  # queue order, ringing included
        self._free: dict[str, list[tuple[float, int, int]]] = {name: [] for name in names}  # (last end, index, version)
        self._logged_in = {name: 0 for name in names}  # members logged in, per queue
        self._online = 0
        self._calls = 0  # calls not ended yet
        self._burst: dict[str, float] = {}
        self._queue_weights: list[float] = []
        self._names = names
        self._reweigh()
        self._arrival_plan = 0
        self._plan_day()

    # --- public ------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The simulated time up to which records have been returned."""
        return self._until

    @property
    def calls_in_progress(self) -> int:
        return self._calls

    @property
    def operators(self) -> int:
        return len(self._operators)

    @property
    def queues(self) -> list[str]:
        return list(self._names)

    @property
    def operators_online(self) -> int:
        return self._online

    @property
    def memberships(self) -> dict[str, tuple[str, ...]]:
        """Agent name -> the queues it is a member of whenever it is logged in."""
        return {op.agent: op.queues for op in self._operators}

    def advance(self, until: float) -> list[QueueLogRecord]:
        """Run the model up to `until`; the records with time in (previous until, until], in time order."""
        agenda = self._agenda
        while agenda and agenda[0][0] <= until:
            at, _, action, args = heapq.heappop(agenda)
            action(at, *args)
        self._until = max(self._until, until)
        records, self._records = self._records, []
        return records

    # --- setup -------------------------------------------------------------------------

    def _staff(self, count: int, process: int, processes: int) -> list[_Operator]:
        names = list(self.profiles)
        cumulative = list(itertools.accumulate(self._shares[q] for q in names))
        sizes, size_weights = zip(*MEMBERSHIP_SIZES)
        memberships: list[list[str]] = []
        picks: Iterator[str] = iter(())
        for size in self._rng.choices(sizes, weights=size_weights, k=count):
            size = min(len(names), size)
            chosen: list[str] = []
            while len(chosen) < size:
                pick = next(picks, None)
                if pick is None:
                    picks = iter(self._rng.choices(names, cum_weights=cumulative, k=4096))
                    continue
                if pick not in chosen:
                    chosen.append(pick)
            memberships.append(chosen)
        # every queue gets at least two members (or everyone, with a tiny staff)
        members = {q: 0 for q in names}
        for chosen in memberships:
            for q in chosen:
                members[q] += 1
        for queue in names:
            while members[queue] < min(2, count):
                open_ = [m for m in memberships if queue not in m and len(m) < 3] or [m for m in memberships if queue not in m]
                self._rng.choice(open_).append(queue)
                members[queue] += 1
        order = {q: i for i, q in enumerate(names)}
        techs = ("PJSIP" if self._rng.random() < 0.65 else "SIP" for _ in memberships)
        return [  # agent numbers interleave over the processes: disjoint, and dense for each
            _Operator(index=index, agent=f"{tech}/{1001 + index * processes + process}",
                      queues=tuple(sorted(chosen, key=order.__getitem__)))
            for index, (tech, chosen) in enumerate(zip(techs, memberships))
        ]

    def _plan_day(self) -> None:
        """The shift starts: most operators log in over the first minutes, as fast as the rate
        leaves room for their ADDMEMBERs (`_roster_tick`), the others later; calls follow the
        staff logged in."""
        first = self._start + 0.001
        self._at(first, self._noise, "QUEUESTART")
        self._at(first + self._rng.expovariate(1 / CONFIGRELOAD_EVERY_S), self._noise, "CONFIGRELOAD")
        self._roster: list[_Operator] = []
        for op in self._operators:
            if self._rng.random() < LOGGED_IN_AT_START_P:
                self._roster.append(op)
            else:
                self._at(first + self._rng.uniform(300.0, 1800.0), self._login, op)
        self._rng.shuffle(self._roster)
        self._roster.reverse()  # popped from the end
        self._expected_online = max(1.0, LOGGED_IN_AT_START_P * len(self._operators))
        self._roster_step = max(0.05, min(1.0, 20.0 / self.rate))
        self._events_at_roster_tick = 0
        self._at(first, self._roster_tick, 0)
        self._at(first, self._arrival_tick, 0)
        self._at(first + self._rng.uniform(60.0, 300.0), self._start_burst)

    # --- scheduling and output ---------------------------------------------------------

    def _at(self, at: float, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._agenda, (round(at, 3), next(self._seq), action, args))

    def _emit(self, at: float, callid: str, queue: str, agent: str, event: str, *data: object) -> None:
        self._records.append(QueueLogRecord(at, callid, queue, agent, event, tuple(map(str, data))))
        self._emitted += 1

    def _uniqueid(self, at: float) -> str:
        self._uniqueid_seq += self._processes
        return f"{math.floor(at)}.{self._uniqueid_seq}"

    def _noise(self, now: float, event: str) -> None:
        self._emit(now, NONE, NONE, NONE, event, "")
        if event == "CONFIGRELOAD":
            self._at(now + self._rng.expovariate(1 / CONFIGRELOAD_EVERY_S), self._noise, "CONFIGRELOAD")

    def _roster_tick(self, now: float, logins_before: int) -> None:
        """Log in as many of the start-of-shift operators as the events due in the next step
        leave room for, after the other events (as many as in the previous step)."""
        step = self._roster_step
        others = self._emitted - self._events_at_roster_tick - logins_before
        room = self.rate * (now + step - self._start) - self._emitted - others
        members = 0
        while self._roster and members < room:
            op = self._roster.pop()
            members += len(op.queues)
            self._at(now + self._rng.uniform(0.0, step), self._login, op)
        self._events_at_roster_tick = self._emitted
        if self._roster:
            self._at(now + step, self._roster_tick, members)

    # --- traffic -----------------------------------------------------------------------

    def _reweigh(self) -> None:
        self._queue_weights = list(itertools.accumulate(self._shares[q] * self._burst.get(q, 1.0) for q in self._names))

    def _steer(self, now: float) -> float:
        """The arrival rate now: the staff logged in sets its level, the event surplus or
        deficit so far nudges it so the record count follows `rate` however the calls go."""
        deficit = self.rate * (now - self._start) - self._emitted
        correction = min(max(1.0 + deficit / (self.rate * STEER_S), STEER_RANGE[0]), STEER_RANGE[1])
        staffed = min(1.0, self._online / self._expected_online)
        return self.call_rate * max(staffed, 0.02) * correction * self._queue_weights[-1]

    def _arrival_tick(self, now: float, plan: int) -> None:
        if plan != self._arrival_plan:
            return
        gap = self._rng.expovariate(self._steer(now))
        if gap > ARRIVAL_TICK_S:  # arrivals are memoryless: looking again a second later is exact
            self._at(now + ARRIVAL_TICK_S, self._arrival_tick, plan)
        else:
            self._at(now + gap, self._arrive, plan)

    def _start_burst(self, now: float) -> None:
        queue = self._rng.choices(self._names, cum_weights=self._queue_weights)[0]
        self._burst[queue] = self._rng.uniform(*BURST_FACTOR)
        self._replan(now)
        self._at(now + self._rng.uniform(*BURST_LENGTH_S), self._end_burst, queue)

    def _end_burst(self, now: float, queue: str) -> None:
        self._burst.pop(queue, None)
        self._replan(now)
        self._at(now + self._rng.expovariate(1 / BURST_GAP_S), self._start_burst)

    def _replan(self, now: float) -> None:
        self._reweigh()
        self._arrival_plan += 1
        self._arrival_tick(now, self._arrival_plan)

    def _arrive(self, now: float, plan: int) -> None:
        if plan != self._arrival_plan:
            return
        self._arrival_tick(now, plan)
        pick = bisect.bisect_right(self._queue_weights, self._rng.random() * self._queue_weights[-1])
        queue = self._names[min(pick, len(self._names) - 1)]
        profile = self.profiles[queue]
        line = self._waiting[queue]
        call = _Call(callid=self._uniqueid(now), queue=queue, entered=now, origposition=len(line) + 1)
        callerid = f"+7916{self._rng.randrange(10**7):07d}"
        self._emit(now, call.callid, queue, NONE, "ENTERQUEUE", "", callerid, call.origposition)
        line[call] = None
        self._calls += 1
        if not self._logged_in[queue]:
            self._at(now + self._rng.uniform(1.0, 3.0), self._leave, call, "EXITEMPTY")  # leavewhenempty
        patience = profile.patience_median_s * math.exp(self._rng.gauss(0.0, 0.9))
        if patience < profile.timeout_s:
            self._at(now + patience, self._leave, call, "ABANDON")
        self._at(now + profile.timeout_s, self._leave, call, "EXITWITHTIMEOUT")
        if self._rng.random() < profile.key_exit_p:
            self._at(now + self._rng.uniform(5.0, 40.0), self._leave, call, "EXITWITHKEY")
        self._seek_operator(now, call)

    # --- dispatch: free-operator pools per queue, strategy leastrecent ---------------------

    def _take_free(self, queue: str) -> Optional[_Operator]:
        """The ready member of `queue` whose last call ended longest ago (stale places dropped)."""
        pool = self._free[queue]
        while pool:
            _, index, version = pool[0]
            op = self._operators[index]
            if op.version == version and op.state == READY and queue not in op.paused:
                heapq.heappop(pool)
                return op
            heapq.heappop(pool)
        return None

    def _seek_operator(self, now: float, call: _Call) -> None:
        """A caller became ready to ring: ring the queue's longest-idle free member, if any."""
        op = self._take_free(call.queue)
        if op is not None:
            self._ring(now, call, op)

    def _offer(self, now: float, op: _Operator) -> None:
        """An operator became ready: ring it for the best caller of its queues (higher queue
        weight first, then longest waiting), or put it in the free pools of its queues."""
        if op.state != READY:
            return
        best: Optional[_Call] = None
        for queue in op.queues:
            if queue in op.paused:
                continue
            for call in self._waiting[queue]:
                if call.state == "waiting" and call.next_try <= now:
                    if best is None or (-self.profiles[queue].priority, call.entered) < (
                            -self.profiles[best.queue].priority, best.entered):
                        best = call
                    break
        if best is not None:
            self._ring(now, best, op)
            return
        op.version += 1
        for queue in op.queues:
            if queue not in op.paused:
                heapq.heappush(self._free[queue], (op.last_call_end, op.index, op.version))

    def _ring(self, now: float, call: _Call, op: _Operator) -> None:
        call.state, call.agent, call.ring_started = "ringing", op.agent, now
        call.attempt += 1
        op.state, op.call = RINGING, call
        op.version += 1
        if self._rng.random() < NO_ANSWER_P:
            self._at(now + RING_TIMEOUT_S, self._ring_no_answer, call, call.attempt)
        else:
            self._at(now + self._rng.uniform(*RING_ANSWER_S), self._connect, call, call.attempt)

    def _stop_ringing(self, now: float, call: _Call, event: str) -> _Operator:
        op = self._by_agent[call.agent]
        self._emit(now, call.callid, call.queue, op.agent, event, round((now - call.ring_started) * 1000))
        op.state, op.call = READY, None
        op.last_call_end = max(op.last_call_end, now)  # leastrecent moves on to the next member
        call.state, call.agent = "waiting", ""
        return op

    def _ring_no_answer(self, now: float, call: _Call, attempt: int) -> None:
        if call.state != "ringing" or call.attempt != attempt:
            return
        op = self._stop_ringing(now, call, "RINGNOANSWER")
        call.next_try = round(now + RETRY_S, 3)
        self._at(call.next_try, self._retry, call, attempt)
        self._offer(now, op)

    def _retry(self, now: float, call: _Call, attempt: int) -> None:
        if call.state == "waiting" and call.attempt == attempt:
            self._seek_operator(now, call)

    def _connect(self, now: float, call: _Call, attempt: int) -> None:
        if call.state != "ringing" or call.attempt != attempt:
            return
        op = self._by_agent[call.agent]
        call.holdtime = _whole_seconds(now, call.entered)
        self._emit(
            now, call.callid, call.queue, op.agent, "CONNECT",
            call.holdtime, self._uniqueid(call.ring_started), _whole_seconds(now, call.ring_started),
        )
        del self._waiting[call.queue][call]
        call.state, call.connected = "talking", now
        op.state = TALKING
        talk = TALK_MEDIAN_S * math.exp(self._rng.gauss(0.0, TALK_SIGMA))
        self._at(now + max(talk, 5.0), self._hang_up, call)

    def _hang_up(self, now: float, call: _Call) -> None:
        op = self._by_agent[call.agent]
        kind = self._rng.choices([k for k, _ in END_KINDS], weights=[w for _, w in END_KINDS])[0]
        times = (call.holdtime, _whole_seconds(now, call.connected), call.origposition)
        if kind == "BLINDTRANSFER":
            self._emit(now, call.callid, call.queue, op.agent, kind, *self._rng.choice(TRANSFER_TARGETS), *times)
        elif kind == "ATTENDEDTRANSFER":
            bridge = "%08x-%04x-%04x-%04x-%012x" % tuple(self._rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
            self._emit(now, call.callid, call.queue, op.agent, kind, "BRIDGE", bridge, *times)
        else:
            self._emit(now, call.callid, call.queue, op.agent, kind, *times)
        call.state = "done"
        self._calls -= 1
        op.state, op.call = WRAPUP, None
        op.last_call_end = now
        self._at(now + self.profiles[call.queue].wrapup_s, self._wrapped_up, op, op.version)

    def _wrapped_up(self, now: float, op: _Operator, version: int) -> None:
        if op.state == WRAPUP and op.version == version:
            op.state = READY
            if self._observer is not None:
                self._observer.ready(now, op.agent)
            self._offer(now, op)

    def _leave(self, now: float, call: _Call, kind: str) -> None:
        """The caller leaves unanswered: ABANDON, EXITWITHTIMEOUT, EXITEMPTY or EXITWITHKEY."""
        if call.state not in ("waiting", "ringing"):
            return
        if kind in ("EXITWITHKEY", "EXITEMPTY") and call.state == "ringing":
            return  # a key press or the empty check only happens while on hold
        if kind == "EXITEMPTY" and self._logged_in[call.queue]:
            return
        freed = self._stop_ringing(now, call, "RINGCANCELED") if call.state == "ringing" else None
        line = self._waiting[call.queue]
        position = next(i for i, c in enumerate(line, 1) if c is call)
        waittime = _whole_seconds(now, call.entered)
        if kind == "EXITWITHKEY":
            self._emit(now, call.callid, call.queue, NONE, kind, "1", position, call.origposition, waittime)
        else:
            self._emit(now, call.callid, call.queue, NONE, kind, position, call.origposition, waittime)
        del line[call]
        call.state = "done"
        self._calls -= 1
        if freed is not None:
            self._offer(now, freed)

    # --- operators ---------------------------------------------------------------------

    def _member_event(self, now: float, op: _Operator, queue: str, event: str, data: str) -> None:
        self._emit(now, NONE, queue, op.agent, event, data)

    def _login(self, now: float, op: _Operator) -> None:
        op.state = READY
        op.session += 1
        self._online += 1
        paused = self._rng.random() < PAUSED_AT_LOGIN_P
        for queue in op.queues:
            self._member_event(now, op, queue, "ADDMEMBER", "PAUSED" if paused else "")
            self._logged_in[queue] += 1
        if self._observer is not None:
            self._observer.logged_in(now, op.agent, paused)
        if paused:
            op.paused = frozenset(op.queues)
            self._at(now + self._rng.uniform(10.0, 120.0), self._unpause, op, op.session, False)
        else:
            self._plan_pause(now, op)
        shift = min(max(self._rng.gauss(SHIFT_MEAN_S, SHIFT_SPREAD_S), SHIFT_MEAN_S / 2), SHIFT_MEAN_S * 1.5)
        self._at(now + shift, self._logoff, op, op.session)
        self._at(now + self._rng.uniform(*LUNCH_AFTER_S), self._pause, op, op.session, LUNCH)
        self._offer(now, op)

    def _logoff(self, now: float, op: _Operator, session: int) -> None:
        if session != op.session or op.state == OFFLINE:
            return
        if op.state in (RINGING, TALKING):
            self._at(now + 30.0, self._logoff, op, session)  # logs off after this call
            return
        for queue in op.queues:
            self._member_event(now, op, queue, "REMOVEMEMBER", "")
            self._logged_in[queue] -= 1
        if self._observer is not None:
            self._observer.logged_off(now, op.agent)
        op.state = OFFLINE
        op.version += 1
        op.paused = frozenset()
        self._online -= 1
        self._at(now + self._rng.uniform(*OFFLINE_S), self._login, op)

    def _plan_pause(self, now: float, op: _Operator) -> None:
        self._at(now + self._rng.expovariate(1 / PAUSE_EVERY_S), self._pause, op, op.session)

    def _pause(self, now: float, op: _Operator, session: int, planned: Optional[tuple[str, float, float]] = None) -> None:
        """A pause of a random reason, or the `planned` one (the shift's lunch)."""
        if session != op.session or op.state == OFFLINE:
            return
        if op.state in ((RINGING, TALKING) if planned else (RINGING,)) or (planned and op.paused):
            # never pause a ringing phone (CONNECT could follow); lunch waits for the call, or the pause, to end
            self._at(now + 20.0, self._pause, op, session, planned)
            return
        if not planned and op.paused:
            self._plan_pause(now, op)  # at lunch: the next one, later
            return
        reason, _, median = planned or self._rng.choices(PAUSE_REASONS, weights=[w for _, w, _ in PAUSE_REASONS])[0]
        every = self._rng.random() < PAUSEALL_P
        if every:
            self._emit(now, NONE, NONE, op.agent, "PAUSEALL", reason)
            op.paused = frozenset(op.queues)
        else:
            queues = [self._rng.choice(op.queues)] if self._rng.random() < PAUSE_ONE_QUEUE_P else list(op.queues)
            for queue in queues:
                self._member_event(now, op, queue, "PAUSE", reason)
            op.paused = frozenset(queues)
        if self._observer is not None:
            self._observer.paused(now, op.agent, reason)
        self._at(now + median * math.exp(self._rng.gauss(0.0, 0.4)), self._unpause, op, session, every, not planned)

    def _unpause(self, now: float, op: _Operator, session: int, every: bool, plan_next: bool = True) -> None:
        """The pause ends; after a random one the next is planned (lunch is outside that chain)."""
        if session != op.session or op.state == OFFLINE:
            return
        if every:
            self._emit(now, NONE, NONE, op.agent, "UNPAUSEALL", "")
        else:
            for queue in op.queues:
                if queue in op.paused:
                    self._member_event(now, op, queue, "UNPAUSE", "")
        if self._observer is not None:
            self._observer.unpaused(now, op.agent)
        op.paused = frozenset()
        if plan_next:
            self._plan_pause(now, op)
        self._offer(now, op)


# --- the shell: wall clock and Kafka ------------------------------------------------------

PROGRESS_EVERY_S = 5.0
RATE_WINDOW_S = 10.0  # the progress line's rate is over the last this many seconds
TICK_S = 0.02
BEHIND_S = 2.0  # due events older than this mean the process cannot keep up


@dataclass(slots=True)
class Pacer:
    """How many records are due by a moment: `rate` per second since `started`, evenly spread.

    Pure: the caller passes the clock reading. A sender that fell behind (a pause, a slow
    broker) catches up on its next call, so the count over any window holds; `behind` says
    by how many seconds it has fallen behind, to tell when one process cannot keep up.
    """

    rate: float
    started: float
    sent: int = 0

    def due(self, now: float) -> int:
        """Records to send now so that `sent` becomes the count owed by `now`."""
        return max(0, math.floor(self.rate * (now - self.started) + 1e-9) - self.sent)

    def mark_sent(self, count: int) -> None:
        self.sent += count

    def wait(self, now: float) -> float:
        """Seconds from `now` until the next record is due."""
        return max(0.0, self.started + (self.sent + 1) / self.rate - now)

    def behind(self, now: float) -> float:
        """Seconds of records owed but not sent at `now`."""
        return self.due(now) / self.rate


def record_json(record: QueueLogRecord) -> bytes:
    """The JSON form of a `qapp-events` value (SPEC "qapp-events value")."""
    return orjson.dumps(to_json(record))


def record_key(record: QueueLogRecord) -> bytes:
    """Per call (or per agent for member events) order must hold, so that is the key."""
    return (record.callid if record.callid != NONE else record.agent).encode()


def processes_needed(rate: float) -> int:
    return max(1, math.ceil(rate / MAX_RATE_PER_PROCESS))


async def run(
    settings: Settings,
    rate: float,
    duration: Optional[float],
    seed: Optional[int],
    speed: float = 1.0,
    progress: bool = True,
    loss: float = 0.0,
    operators: Optional[int] = None,
    queues: Optional[Sequence[str]] = None,
    process: int = 0,
    processes: int = 1,
    ivr_orders: float = 0.0,
    driver_statuses: float = 0.0,
    chats: float = 0.0,
    operator_status: bool = False,
    sip_drop_p: float = SIP_DROP_P,
) -> int:
    """Produce simulated traffic to `qapp-events` at `rate` records/s; returns the number sent.

    A `Pacer` says how many records are due; the model is advanced until it has them, so
    the rate sent is the rate asked whatever the calls do, and the model's own steering
    keeps its clock (the records' times) within seconds of the wall clock. Simulated time
    runs `speed` times as fast as the wall clock from now. Stops after `duration` wall
    seconds (None: until cancelled; on cancellation the producer is still flushed and
    stopped, and the cancellation propagates). `loss` is the share of the records dropped
    at random (never sent; they count in the rate), as a lossy log would. `ivr_orders`
    passengers' orders per second also go to `ivr-commands` (dev/ivr_traffic.py), beside
    the rate; `driver_statuses` drivers' status changes per second (with their profiles
    first and a position before each status) go to `contractor-status`, `driver-positions`
    and `driver-profiles` (dev/driver_traffic.py), beside the rate too. With `operator_status`
    (the command line's default) the operators' CRM status changes and softphone
    registrations go to `operator-commands` and `sip-registrations` (dev/operator_traffic.py:
    about seven records per operator-hour logged in, two per login, so as many again as the
    ADDMEMBERs while a shift starts; `sip_drop_p` of the shifts lose the endpoint a while),
    also beside the rate: counted neither in it nor in the number
    returned, and sent with the queue_log records of their time, never ahead of them.
    """
    if speed <= 0:
        raise ValueError("speed must be positive")
    if not 0.0 <= loss < 1.0:
        raise ValueError("loss must be in [0, 1)")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    label = f"simulate[{process + 1}/{processes}]" if processes > 1 else "simulate"
    wall_start = time.time()
    crm = OperatorTraffic(seed + 3, wall_start, SHIFT_MEAN_S, sip_drop_p) if operator_status else None
    simulation = CallCenterSimulation(seed=seed, start=wall_start, rate=rate / speed, operators=operators,
                                      queues=queues, process=process, processes=processes, observer=crm)
    dropper = random.Random(seed + 1)  # which events are lost: the same for the same seed
    topic = settings.topic_qapp_events
    ivr = IvrTraffic(seed + 2, ivr_orders, wall_start, prefix=f"sim{process}") if ivr_orders > 0 else None
    ivr_topic = ivr_settings().topic_ivr_commands
    drivers = (DriverTraffic(seed + 4, driver_statuses, wall_start, prefix=f"sim{process}")
               if driver_statuses > 0 else None)
    dt = deptrans_settings()
    driver_topics = {"profiles": dt.topic_driver_profiles, "positions": dt.topic_driver_positions,
                     "statuses": dt.topic_contractor_status}
    cs = chat_settings()
    support = (ChatTraffic(seed + 5, chats, wall_start, {"chat_events": cs.topic_chat_events,
                                                         "support_queue": cs.topic_support_queue,
                                                         "operator_events": cs.topic_operator_events},
                           prefix=f"sim{process}") if chats > 0 else None)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    buffered: deque[QueueLogRecord] = deque()
    sim_step = max(0.01, min(1.0, 20.0 / rate)) * speed  # simulated seconds per model step
    sent = 0
    history: deque[tuple[float, int]] = deque()  # (monotonic, sent) over the last RATE_WINDOW_S
    last_time = wall_start

    def say(text: str) -> None:
        print(f"{label}: {text}", file=sys.stderr, flush=True)

    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # releases the half-open client
        raise
    started = time.monotonic()
    pacer = Pacer(rate=rate, started=started)
    history.append((started, 0))
    last_report = started
    slow_since: Optional[float] = None
    warned = False

    def report(now: float, final: bool = False) -> None:
        elapsed = now - started
        if final:
            summary = f"{sent / max(elapsed, 1e-9):.1f} ev/s overall"
        else:
            then, count = history[0]
            summary = f"{(sent - count) / max(now - then, 1e-9):.1f} ev/s over the last {now - then:.0f} s"
        clock = last_time - (wall_start + (time.time() - wall_start) * speed)  # + ahead of the wall clock
        say(f"{'done' if final else 'running'}: {sent} events to {topic} in {elapsed:.0f} s ({summary}, "
            f"{simulation.calls_in_progress} calls in progress, {simulation.operators_online}/{simulation.operators} "
            f"operators logged in, {len(simulation.queues)} queues, records' clock {clock:+.1f} s, seed {seed}"
            + (f"; {ivr.sent} IVR commands of {ivr.count} orders to {ivr_topic}" if ivr is not None else "")
            + (f"; {crm.commands} status commands to {crm.topic_commands}, {crm.registrations} SIP registrations "
               f"to {crm.topic_registrations}" if crm is not None else "")
            + (f"; drivers: {drivers.sent['statuses']} statuses, {drivers.sent['positions']} positions, "
               f"{drivers.sent['profiles']} profiles of {drivers.drivers}" if drivers is not None else "")
            + (f"; chat: {support.chats} chats, {support.sent} records" if support is not None else "") + ")")

    try:
        if progress:
            say(f"seed {seed}, rate {rate:g} ev/s, speed x{speed:g}, topic {topic}, {len(simulation.queues)} queues, "
                f"{simulation.operators} operators, {simulation.call_rate * speed:.2f} calls/s")
        if rate / max(processes, 1) > MAX_RATE_PER_PROCESS and processes == 1:
            say(f"{rate:g} ev/s is more than one process produces here (about {MAX_RATE_PER_PROCESS:g}); "
                f"try --processes {processes_needed(rate)}")
        pending: list[asyncio.Future[Any]] = []
        while True:
            now = time.monotonic()
            ended = duration is not None and now - started >= duration
            owed = pacer.due(started + duration if ended and duration is not None else now)
            while len(buffered) < owed:
                buffered.extend(simulation.advance(simulation.now + sim_step))
            batch = [buffered.popleft() for _ in range(owed)]
            pacer.mark_sent(owed)
            if batch:
                last_time = batch[-1].time
            if loss:
                batch = [r for r in batch if dropper.random() >= loss]
            if pending:
                await asyncio.gather(*pending)  # the previous batch is delivered: errors surface here
            pending = []
            if crm is not None:  # the CRM change comes a moment before the queue_log event it causes
                for crm_topic, key, value in map(crm.wire, crm.due(last_time)):
                    pending.append(await producer.send(crm_topic, value=value, key=key))
            pending += [await producer.send(topic, value=record_json(r), key=record_key(r)) for r in batch]
            if ivr is not None:
                pending += [await producer.send(ivr_topic, value=value, key=key) for key, value in ivr.due(time.time())]
            if drivers is not None:
                pending += [await producer.send(driver_topics[kind], value=value, key=key)
                            for kind, key, value in drivers.due(time.time())]
            if support is not None:
                pending += [await producer.send(chat_topic, value=value, key=key)
                            for chat_topic, key, value in support.due(time.time())]
            sent += owed
            now = time.monotonic()
            history.append((now, sent))
            while now - history[0][0] > RATE_WINDOW_S:
                history.popleft()
            if pacer.behind(now) > BEHIND_S and now - started > 5.0:
                slow_since = slow_since if slow_since is not None else now
                if not warned and now - slow_since > 5.0:
                    achieved = sent / (now - started)
                    say(f"cannot keep up with {rate:g} ev/s in one process (about {achieved:.0f} ev/s sent); "
                        f"run with --processes {max(2, processes * math.ceil(rate / achieved))}")
                    warned = True
            else:
                slow_since = None
            if progress and now - last_report >= PROGRESS_EVERY_S:
                report(now)
                last_report = now
            if ended:
                break
            await asyncio.sleep(min(TICK_S, pacer.wait(time.monotonic())))
        if pending:
            await asyncio.gather(*pending)
    finally:
        try:
            await producer.flush()
        finally:
            await producer.stop()
        if progress:
            report(time.monotonic(), final=True)
    return sent


def _queue_list(text: str) -> list[str] | int:
    """`--queues 12` (how many) or `--queues support,drivers` (their names)."""
    if text.strip().isdigit():
        count = int(text)
        if count < 1:
            raise argparse.ArgumentTypeError("at least one queue")
        return count
    names = [q.strip() for q in text.split(",") if q.strip()]
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("a number or a comma-separated list of distinct names")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="EV_PER_S",
                        help=f"queue_log events per second, all queues together (default {DEFAULT_RATE:g})")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after this many seconds (default: run until interrupted)")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="random seed; the same seed gives the same traffic (default: random)")
    parser.add_argument("--loss", type=float, default=0.0, metavar="P",
                        help="drop this share of the events at random, as a lossy log would (default 0)")
    parser.add_argument("--speed", type=float, default=1.0, metavar="X",
                        help="simulated time runs X times as fast as the wall clock (default 1)")
    parser.add_argument("--operators", type=int, default=None, metavar="N",
                        help="operators in the call center (default: as many as the rate needs)")
    parser.add_argument("--queues", type=_queue_list, default=None, metavar="N|NAMES",
                        help="how many queues, or their names comma-separated (default: 4, one more per 10 ev/s)")
    parser.add_argument("--ivr-orders", type=float, default=None, metavar="PER_S",
                        help="passengers' orders per second sent to ivr-commands (bind, route to the IVR, back to "
                             "an operator), beside the rate (default: one per 50 queue_log events/s; 0: none)")
    parser.add_argument("--driver-statuses", type=float, default=None, metavar="PER_S",
                        help="drivers' status changes per second sent to contractor-status (with their positions "
                             "and profiles), beside the rate (default: one per 5 queue_log events/s; 0: none)")
    parser.add_argument("--chats", type=float, default=None, metavar="PER_S",
                        help="support chats opened per second (bot operators take most, some wait for the console), "
                             "beside the rate (default: one per 1,000 queue_log events/s, at least 0.05; 0: none)")
    parser.add_argument("--no-operator-status", dest="operator_status", action="store_false",
                        help="send no operator CRM statuses (operator-commands) nor softphone registrations "
                             "(sip-registrations); by default they follow the operators' queue_log, beside the rate")
    parser.add_argument("--sip-drops", type=float, default=SIP_DROP_P, metavar="P",
                        help=f"share of the operators' shifts whose softphone drops its SIP registration for a few "
                             f"minutes without logging off (default {SIP_DROP_P:g})")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help=f"N producer processes sharing the rate, disjoint call ids and operators (default 1; "
                             f"one process makes up to about {MAX_RATE_PER_PROCESS:g} ev/s)")


def _run_one(args: argparse.Namespace, settings: Settings, process: int, processes: int) -> int:
    """One producer (of `processes`) until the duration ends or SIGINT/SIGTERM; exit code."""
    share = args.rate / processes
    operators = None if args.operators is None else max(1, round(args.operators / processes))
    # every process serves all the queues of the whole rate, with operators of its own
    queues = args.queues if isinstance(args.queues, list) else queue_names(args.rate, args.queues)
    seed = None if args.seed is None else args.seed + 7919 * process
    asked = getattr(args, "ivr_orders", None)
    ivr_orders = (args.rate / 50 if asked is None else asked) / processes
    asked_drivers = getattr(args, "driver_statuses", None)
    driver_statuses = (args.rate / 5 if asked_drivers is None else asked_drivers) / processes
    asked_chats = getattr(args, "chats", None)
    chats = (max(0.05, args.rate / 1000) if asked_chats is None else asked_chats) / processes

    async def supervise() -> int:
        task = asyncio.ensure_future(
            run(settings, rate=share, duration=args.duration, seed=seed, speed=getattr(args, "speed", 1.0),
                loss=getattr(args, "loss", 0.0), operators=operators, queues=queues,
                process=process, processes=processes, ivr_orders=ivr_orders, driver_statuses=driver_statuses,
                chats=chats, operator_status=getattr(args, "operator_status", True),
                sip_drop_p=getattr(args, "sip_drops", SIP_DROP_P))
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass  # interrupted: run() has flushed, stopped the producer and printed its count
        return 0

    try:
        return asyncio.run(supervise())
    except KafkaConnectionError as exc:
        print(f"simulate: cannot reach Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1


def _child(args: argparse.Namespace, settings: Settings, process: int, processes: int) -> None:
    sys.exit(_run_one(args, settings, process, processes))


def main(args: argparse.Namespace, settings: Settings) -> int:
    """`python -m app simulate`: run until the duration ends or SIGINT/SIGTERM; exit code."""
    processes = getattr(args, "processes", 1)
    if args.rate <= 0 or getattr(args, "speed", 1.0) <= 0 or processes < 1:
        print("simulate: --rate, --speed and --processes must be positive", file=sys.stderr)
        return 2
    if not 0.0 <= getattr(args, "loss", 0.0) < 1.0:
        print("simulate: --loss must be at least 0 and below 1 (a share of the events)", file=sys.stderr)
        return 2
    if not 0.0 <= getattr(args, "sip_drops", SIP_DROP_P) < 1.0:
        print("simulate: --sip-drops must be at least 0 and below 1 (a share of the shifts)", file=sys.stderr)
        return 2
    if getattr(args, "operators", None) is not None and args.operators < processes:
        print("simulate: --operators must be at least 1 per process", file=sys.stderr)
        return 2
    for name in ("operators", "queues"):
        args.__dict__.setdefault(name, None)
    if processes == 1:
        return _run_one(args, settings, 0, 1)
    print(f"simulate: {processes} processes at {args.rate / processes:g} ev/s each", file=sys.stderr, flush=True)
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_child, args=(args, settings, i, processes)) for i in range(processes)]
    for child in children:
        child.start()

    def forward(_signum: int, _frame: Any) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: each child flushes and stops its producer

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        for child in children:
            while True:
                try:
                    child.join()
                    break
                except KeyboardInterrupt:
                    continue  # the children got SIGINT too (same process group) and are stopping
    finally:
        signal.signal(signal.SIGTERM, previous)
    return max((child.exitcode or 0) for child in children)
