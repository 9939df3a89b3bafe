"""Traffic simulator: a call center that writes Asterisk queue_log records to `qapp-events`.

`CallCenterSimulation` is the pure core: a seeded discrete-event model of queues, operators
and callers that returns the queue_log records Asterisk would write, in time order, for any
stretch of simulated time. It never looks at the wall clock; the same seed and start give
the same records however `advance` is stepped. `run` is the thin shell that walks the model
along the wall clock and produces its records to Kafka (`python -m app simulate`).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from app.settings import Settings
from tables.callcenter.events import NONE, QueueLogRecord
from tables.callcenter.queue_log import to_json

__all__ = [
    "CallCenterSimulation", "DEFAULT_QUEUES", "DEFAULT_RATE", "add_arguments", "main", "record_json",
    "record_key", "run",
]

DEFAULT_QUEUES = ("support", "drivers", "vip", "lost-items")
DEFAULT_RATE = 5.0  # queue_log events per second, all queues together
DEFAULT_OPERATORS = 24


@dataclass(frozen=True, slots=True)
class QueueProfile:
    """How one queue behaves: its share of the traffic and its callers' manners."""

    share: float  # fraction of all arriving calls, before bursts
    priority: int  # Asterisk queue weight: higher is served first by shared members
    timeout_s: float  # queue timeout: EXITWITHTIMEOUT when the caller waited this long
    patience_median_s: float  # callers abandon after a lognormal wait around this
    key_exit_p: float = 0.0  # chance a caller presses the exit key (EXITWITHKEY) while waiting


PROFILES = {
    "support": QueueProfile(share=0.40, priority=0, timeout_s=300.0, patience_median_s=75.0),
    "drivers": QueueProfile(share=0.30, priority=0, timeout_s=180.0, patience_median_s=60.0),
    "vip": QueueProfile(share=0.10, priority=10, timeout_s=600.0, patience_median_s=120.0),
    "lost-items": QueueProfile(share=0.20, priority=0, timeout_s=240.0, patience_median_s=90.0, key_exit_p=0.03),
}
GENERIC_PROFILE = QueueProfile(share=0.25, priority=0, timeout_s=300.0, patience_median_s=75.0)

# Nominal human time scales; talk, wrap-up and ringing are compressed when the requested
# rate needs more calls than the staff could take at real-life lengths (see `_service_scales`).
TALK_MEDIAN_S = 200.0  # lognormal, sigma 0.4: mostly 2 to 6 minutes
TALK_SIGMA = 0.4
WRAPUP_S = 15.0  # Asterisk wrapuptime: a member is not rung this long after a call
RING_ANSWER_S = (1.0, 6.0)  # how long a phone rings before the operator picks up
RING_TIMEOUT_S = 15.0  # member timeout: RINGNOANSWER after this long
RETRY_S = 5.0  # Asterisk retry: a caller waits this long before ringing again after RINGNOANSWER
NO_ANSWER_P = 0.08
TARGET_OCCUPANCY = 0.6  # of the operators expected to be available, before bursts

END_KINDS = (("COMPLETEAGENT", 0.46), ("COMPLETECALLER", 0.44), ("BLINDTRANSFER", 0.06), ("ATTENDEDTRANSFER", 0.04))
TRANSFER_TARGETS = (("2000", "from-internal"), ("2100", "billing"), ("700", "parkedcalls"), ("5555", "ivr-survey"))

PAUSE_REASONS = (  # reason, weight, median length s
    ("break", 0.30, 300.0),
    ("lunch", 0.08, 1500.0),
    ("training", 0.05, 900.0),
    ("toilet", 0.20, 180.0),
    ("after-call work", 0.22, 60.0),
    ("", 0.15, 120.0),
)
PAUSE_EVERY_S = 18 * 60.0  # mean time between an unpause and the next pause
PAUSEALL_P = 0.25
PAUSE_ONE_QUEUE_P = 0.30  # a per-queue pause covers one queue only, else every queue
PAUSED_AT_LOGIN_P = 0.15
LOGGED_IN_AT_START_P = 0.9
SHIFT_MEAN_S = 2.5 * 3600.0  # mean time logged in before a log-off
OFFLINE_S = (5 * 60.0, 30 * 60.0)
CONFIGRELOAD_EVERY_S = 30 * 60.0

# Bursts: now and then one queue gets several times its traffic for a few minutes.
BURST_GAP_S = 12 * 60.0  # mean quiet time between two bursts
BURST_FACTOR = (2.5, 4.0)
BURST_LENGTH_S = (90.0, 240.0)

# Used to turn the requested event rate into a call arrival rate (measured on long runs).
EVENTS_PER_CALL = 3.1
MEMBER_EVENTS_PER_OPERATOR_HOUR = 9.0
AVAILABLE_FRACTION = 0.75  # operators logged in and not paused, on average


def _whole_seconds(later: float, earlier: float) -> int:
    """A duration as Asterisk writes it: the difference of two time(NULL) readings."""
    return math.floor(later) - math.floor(earlier)


@dataclass(slots=True)
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


@dataclass(slots=True)
class _Operator:
    agent: str
    queues: tuple[str, ...]
    logged_in: bool = False
    session: int = 0  # bumped on every login so actions planned for an old session are dropped
    paused: set[str] = field(default_factory=set)
    ringing: str = ""  # callid
    call: str = ""  # callid
    wrapup_until: float = 0.0
    last_call_end: float = 0.0

    def is_free(self, now: float) -> bool:
        return self.logged_in and not self.ringing and not self.call and self.wrapup_until <= now


class CallCenterSimulation:
    """A seeded call center: `advance(until)` returns the queue_log records of (previous until, until]."""

    def __init__(
        self,
        seed: int,
        start: float,
        queues: Optional[list[str]] = None,
        operators: int = DEFAULT_OPERATORS,
        rate: float = DEFAULT_RATE,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if operators < 1:
            raise ValueError("at least one operator is needed")
        names = list(queues) if queues else list(DEFAULT_QUEUES)
        if len(set(names)) != len(names):
            raise ValueError("queue names must be unique")
        self._rng = random.Random(seed)
        self._start = round(start, 3)
        self._until = self._start
        self._agenda: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._records: list[QueueLogRecord] = []
        self._uniqueid_seq = self._rng.randint(100, 9000)

        self.profiles = {name: PROFILES.get(name, GENERIC_PROFILE) for name in names}
        total_share = sum(p.share for p in self.profiles.values())
        self._shares = {name: p.share / total_share for name, p in self.profiles.items()}
        self._operators = self._staff(operators)
        self._waiting: dict[str, list[_Call]] = {name: [] for name in names}  # queue order, ringing included
        self._calls: dict[str, _Call] = {}  # calls not ended yet
        self._burst = {name: 1.0 for name in names}
        self._arrival_plan = {name: 0 for name in names}

        self.rate = rate
        self.call_rate = self._call_rate(rate, operators)
        self.talk_scale, self.ring_scale = self._service_scales(self.call_rate, operators)
        self._plan_day()

    # --- public ------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The simulated time up to which records have been returned."""
        return self._until

    @property
    def calls_in_progress(self) -> int:
        return len(self._calls)

    @property
    def memberships(self) -> dict[str, tuple[str, ...]]:
        """Agent name -> the queues it is a member of whenever it is logged in."""
        return {op.agent: op.queues for op in self._operators.values()}

    def advance(self, until: float) -> list[QueueLogRecord]:
        """Run the model up to `until`; the records with time in (previous until, until], in time order."""
        while self._agenda and self._agenda[0][0] <= until:
            at, _, action, args = heapq.heappop(self._agenda)
            action(at, *args)
        self._until = max(self._until, until)
        records, self._records = self._records, []
        return records

    # --- setup -------------------------------------------------------------------------

    def _staff(self, count: int) -> dict[str, _Operator]:
        names = list(self.profiles)
        weights = [self._shares[q] for q in names]
        memberships: list[list[str]] = []
        for _ in range(count):
            size = min(len(names), self._rng.choices((1, 2, 3), weights=(0.4, 0.4, 0.2))[0])
            chosen: list[str] = []
            while len(chosen) < size:
                pick = self._rng.choices(names, weights=weights)[0]
                if pick not in chosen:
                    chosen.append(pick)
            memberships.append(chosen)
        # every queue gets at least two members (or everyone, with a tiny staff)
        for queue in names:
            while sum(queue in m for m in memberships) < min(2, count):
                open_ = [m for m in memberships if queue not in m and len(m) < 3] or [m for m in memberships if queue not in m]
                self._rng.choice(open_).append(queue)
        staff = {}
        for index, chosen in enumerate(memberships):
            tech = "PJSIP" if self._rng.random() < 0.65 else "SIP"
            agent = f"{tech}/{1001 + index}"
            staff[agent] = _Operator(agent=agent, queues=tuple(q for q in names if q in chosen))
        return staff

    def _call_rate(self, rate: float, operators: int) -> float:
        """Calls per second, on average over bursts, that give about `rate` events per second."""
        member_rate = operators * MEMBER_EVENTS_PER_OPERATOR_HOUR / 3600.0
        call_events = max(rate - member_rate, 0.2 * rate)
        mean_factor = sum(BURST_FACTOR) / 2
        mean_length = sum(BURST_LENGTH_S) / 2
        duty = mean_length / (mean_length + BURST_GAP_S)
        burst_gain = 1 + (mean_factor - 1) * duty * sum(s * s for s in self._shares.values())
        return call_events / EVENTS_PER_CALL / burst_gain

    def _service_scales(self, call_rate: float, operators: int) -> tuple[float, float]:
        """How much talk/wrap-up and ringing are compressed so the staff can carry the calls."""
        ring_busy = sum(RING_ANSWER_S) / 2 + NO_ANSWER_P / (1 - NO_ANSWER_P) * RING_TIMEOUT_S
        talk_busy = TALK_MEDIAN_S * math.exp(TALK_SIGMA**2 / 2) + WRAPUP_S
        budget = TARGET_OCCUPANCY * operators * AVAILABLE_FRACTION / call_rate  # busy seconds per call
        overall = min(1.0, budget / (ring_busy + talk_busy))
        ring_scale = min(1.0, 10 * overall)  # phones ring for seconds even in a busy simulation
        talk_scale = max(0.005, min(1.0, (budget - ring_scale * ring_busy) / talk_busy))
        return talk_scale, ring_scale

    def _plan_day(self) -> None:
        first = self._start + 0.001
        self._at(first, self._noise, "QUEUESTART")
        self._at(first + self._rng.expovariate(1 / CONFIGRELOAD_EVERY_S), self._noise, "CONFIGRELOAD")
        for op in self._operators.values():
            if self._rng.random() < LOGGED_IN_AT_START_P:
                self._at(first + self._rng.uniform(0.01, 8.0), self._login, op)
            else:
                self._at(first + self._rng.uniform(300.0, 1800.0), self._login, op)
        for queue in self.profiles:
            self._plan_arrival(first + 10.0, queue)
        self._at(first + self._rng.uniform(60.0, 300.0), self._start_burst)

    # --- scheduling and output ---------------------------------------------------------

    def _at(self, at: float, action: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._agenda, (round(at, 3), self._seq, action, args))

    def _emit(self, at: float, callid: str, queue: str, agent: str, event: str, *data: object) -> None:
        self._records.append(QueueLogRecord(at, callid, queue, agent, event, tuple(str(d) for d in data)))

    def _uniqueid(self, at: float) -> str:
        self._uniqueid_seq += 1
        return f"{math.floor(at)}.{self._uniqueid_seq}"

    def _noise(self, now: float, event: str) -> None:
        self._emit(now, NONE, NONE, NONE, event, "")
        if event == "CONFIGRELOAD":
            self._at(now + self._rng.expovariate(1 / CONFIGRELOAD_EVERY_S), self._noise, "CONFIGRELOAD")

    # --- traffic -----------------------------------------------------------------------

    def _plan_arrival(self, now: float, queue: str) -> None:
        self._arrival_plan[queue] += 1
        rate = self.call_rate * self._shares[queue] * self._burst[queue]
        self._at(now + self._rng.expovariate(rate), self._arrive, queue, self._arrival_plan[queue])

    def _start_burst(self, now: float) -> None:
        queue = self._rng.choices(list(self._shares), weights=list(self._shares.values()))[0]
        self._burst[queue] = self._rng.uniform(*BURST_FACTOR)
        self._plan_arrival(now, queue)  # arrivals are memoryless: replanning at the new rate is exact
        self._at(now + self._rng.uniform(*BURST_LENGTH_S), self._end_burst, queue)

    def _end_burst(self, now: float, queue: str) -> None:
        self._burst[queue] = 1.0
        self._plan_arrival(now, queue)
        self._at(now + self._rng.expovariate(1 / BURST_GAP_S), self._start_burst)

    def _arrive(self, now: float, queue: str, plan: int) -> None:
        if plan != self._arrival_plan[queue]:
            return
        self._plan_arrival(now, queue)
        profile = self.profiles[queue]
        line = self._waiting[queue]
        call = _Call(callid=self._uniqueid(now), queue=queue, entered=now, origposition=len(line) + 1)
        callerid = f"+7916{self._rng.randrange(10**7):07d}"
        self._emit(now, call.callid, queue, NONE, "ENTERQUEUE", "", callerid, call.origposition)
        line.append(call)
        self._calls[call.callid] = call
        if not any(queue in op.queues and op.logged_in for op in self._operators.values()):
            self._at(now + self._rng.uniform(1.0, 3.0), self._leave, call, "EXITEMPTY")  # leavewhenempty
        patience = profile.patience_median_s * math.exp(self._rng.gauss(0.0, 0.9))
        if patience < profile.timeout_s:
            self._at(now + patience, self._leave, call, "ABANDON")
        self._at(now + profile.timeout_s, self._leave, call, "EXITWITHTIMEOUT")
        if self._rng.random() < profile.key_exit_p:
            self._at(now + self._rng.uniform(5.0, 40.0), self._leave, call, "EXITWITHKEY")
        self._dispatch(now)

    def _dispatch(self, now: float) -> None:
        """Ring free members for waiting callers: higher queue weight first, then longest waiting."""
        free = [op for op in self._operators.values() if op.is_free(now)]
        if not free:
            return
        waiting: list[_Call] = []
        for queue, line in self._waiting.items():
            # with k members free for this queue, only its first k callers can be served now
            room = sum(1 for op in free if queue in op.queues and queue not in op.paused)
            for call in line:
                if room == 0:
                    break
                if call.state == "waiting" and call.next_try <= now:
                    waiting.append(call)
                    room -= 1
        waiting.sort(key=lambda c: (-self.profiles[c.queue].priority, c.entered))
        for call in waiting:
            eligible = [op for op in free if call.queue in op.queues and call.queue not in op.paused]
            if not eligible:
                continue
            op = min(eligible, key=lambda o: (o.last_call_end, o.agent))  # strategy leastrecent
            free.remove(op)
            self._ring(now, call, op)
            if not free:
                return

    def _ring(self, now: float, call: _Call, op: _Operator) -> None:
        call.state, call.agent, call.ring_started = "ringing", op.agent, now
        call.attempt += 1
        op.ringing = call.callid
        if self._rng.random() < NO_ANSWER_P:
            self._at(now + RING_TIMEOUT_S * self.ring_scale, self._ring_no_answer, call, call.attempt)
        else:
            self._at(now + self._rng.uniform(*RING_ANSWER_S) * self.ring_scale, self._connect, call, call.attempt)

    def _stop_ringing(self, now: float, call: _Call, event: str) -> None:
        op = self._operators[call.agent]
        self._emit(now, call.callid, call.queue, op.agent, event, round((now - call.ring_started) * 1000))
        op.ringing = ""
        op.last_call_end = max(op.last_call_end, now)  # leastrecent moves on to the next member
        call.state, call.agent = "waiting", ""

    def _ring_no_answer(self, now: float, call: _Call, attempt: int) -> None:
        if call.state != "ringing" or call.attempt != attempt:
            return
        self._stop_ringing(now, call, "RINGNOANSWER")
        call.next_try = now + RETRY_S * self.ring_scale
        self._at(call.next_try, self._dispatch)
        self._dispatch(now)

    def _connect(self, now: float, call: _Call, attempt: int) -> None:
        if call.state != "ringing" or call.attempt != attempt:
            return
        op = self._operators[call.agent]
        call.holdtime = _whole_seconds(now, call.entered)
        self._emit(
            now, call.callid, call.queue, op.agent, "CONNECT",
            call.holdtime, self._uniqueid(call.ring_started), _whole_seconds(now, call.ring_started),
        )
        self._waiting[call.queue].remove(call)
        call.state, call.connected = "talking", now
        op.ringing, op.call = "", call.callid
        talk = TALK_MEDIAN_S * math.exp(self._rng.gauss(0.0, TALK_SIGMA)) * self.talk_scale
        self._at(now + max(talk, 1.0), self._hang_up, call)

    def _hang_up(self, now: float, call: _Call) -> None:
        op = self._operators[call.agent]
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
        del self._calls[call.callid]
        op.call = ""
        op.last_call_end = now
        op.wrapup_until = round(now + WRAPUP_S * self.talk_scale, 3)
        self._at(op.wrapup_until, self._dispatch)

    def _leave(self, now: float, call: _Call, kind: str) -> None:
        """The caller leaves unanswered: ABANDON, EXITWITHTIMEOUT, EXITEMPTY or EXITWITHKEY."""
        if call.state not in ("waiting", "ringing"):
            return
        if kind in ("EXITWITHKEY", "EXITEMPTY") and call.state == "ringing":
            return  # a key press or the empty check only happens while on hold
        if kind == "EXITEMPTY" and any(call.queue in op.queues and op.logged_in for op in self._operators.values()):
            return
        freed = call.state == "ringing"
        if freed:
            self._stop_ringing(now, call, "RINGCANCELED")
        line = self._waiting[call.queue]
        position = line.index(call) + 1
        waittime = _whole_seconds(now, call.entered)
        if kind == "EXITWITHKEY":
            self._emit(now, call.callid, call.queue, NONE, kind, "1", position, call.origposition, waittime)
        else:
            self._emit(now, call.callid, call.queue, NONE, kind, position, call.origposition, waittime)
        line.remove(call)
        call.state = "done"
        del self._calls[call.callid]
        if freed:
            self._dispatch(now)

    # --- operators ---------------------------------------------------------------------

    def _member_event(self, now: float, op: _Operator, queue: str, event: str, data: str) -> None:
        self._emit(now, NONE, queue, op.agent, event, data)

    def _login(self, now: float, op: _Operator) -> None:
        op.logged_in = True
        op.session += 1
        paused = self._rng.random() < PAUSED_AT_LOGIN_P
        for queue in op.queues:
            self._member_event(now, op, queue, "ADDMEMBER", "PAUSED" if paused else "")
        if paused:
            op.paused = set(op.queues)
            self._at(now + self._rng.uniform(10.0, 120.0), self._unpause, op, op.session, False)
        else:
            self._plan_pause(now, op)
        self._at(now + self._rng.expovariate(1 / SHIFT_MEAN_S), self._logoff, op, op.session)
        self._dispatch(now)

    def _logoff(self, now: float, op: _Operator, session: int) -> None:
        if session != op.session or not op.logged_in:
            return
        if op.ringing or op.call:
            self._at(now + 30.0, self._logoff, op, session)  # logs off after this call
            return
        for queue in op.queues:
            self._member_event(now, op, queue, "REMOVEMEMBER", "")
        op.logged_in = False
        op.paused = set()
        self._at(now + self._rng.uniform(*OFFLINE_S), self._login, op)

    def _plan_pause(self, now: float, op: _Operator) -> None:
        self._at(now + self._rng.expovariate(1 / PAUSE_EVERY_S), self._pause, op, op.session)

    def _pause(self, now: float, op: _Operator, session: int) -> None:
        if session != op.session or not op.logged_in:
            return
        if op.ringing:
            self._at(now + 20.0, self._pause, op, session)  # never pause a ringing phone: CONNECT could follow
            return
        reason, _, median = self._rng.choices(PAUSE_REASONS, weights=[w for _, w, _ in PAUSE_REASONS])[0]
        every = self._rng.random() < PAUSEALL_P
        if every:
            self._emit(now, NONE, NONE, op.agent, "PAUSEALL", reason)
            op.paused = set(op.queues)
        else:
            queues = [self._rng.choice(op.queues)] if self._rng.random() < PAUSE_ONE_QUEUE_P else list(op.queues)
            for queue in queues:
                self._member_event(now, op, queue, "PAUSE", reason)
            op.paused = set(queues)
        self._at(now + median * math.exp(self._rng.gauss(0.0, 0.4)), self._unpause, op, session, every)

    def _unpause(self, now: float, op: _Operator, session: int, every: bool) -> None:
        if session != op.session or not op.logged_in:
            return
        if every:
            self._emit(now, NONE, NONE, op.agent, "UNPAUSEALL", "")
        else:
            for queue in op.queues:
                if queue in op.paused:
                    self._member_event(now, op, queue, "UNPAUSE", "")
        op.paused = set()
        self._plan_pause(now, op)
        self._dispatch(now)


# --- the shell: wall clock and Kafka ------------------------------------------------------

PROGRESS_EVERY_S = 5.0
TICK_S = 0.05


def record_json(record: QueueLogRecord) -> bytes:
    """The JSON form of a `qapp-events` value (SPEC "qapp-events value")."""
    return orjson.dumps(to_json(record))


def record_key(record: QueueLogRecord) -> bytes:
    """Per call (or per agent for member events) order must hold, so that is the key."""
    return (record.callid if record.callid != NONE else record.agent).encode()


async def run(
    settings: Settings,
    rate: float,
    duration: Optional[float],
    seed: Optional[int],
    speed: float = 1.0,
    progress: bool = True,
    loss: float = 0.0,
) -> int:
    """Produce simulated traffic to `qapp-events` in real time; returns the number of events sent.

    Simulated time runs `speed` times as fast as the wall clock and starts at now, so event
    times are current. Stops after `duration` wall seconds (None: until cancelled; on
    cancellation the producer is still flushed and stopped, and the cancellation propagates).
    `loss` is the share of events dropped at random (never sent), as a lossy log would.
    """
    if speed <= 0:
        raise ValueError("speed must be positive")
    if not 0.0 <= loss < 1.0:
        raise ValueError("loss must be in [0, 1)")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    wall_start = time.time()
    started = time.monotonic()
    simulation = CallCenterSimulation(seed=seed, start=wall_start, rate=rate)
    dropper = random.Random(seed + 1)  # which events are lost: the same for the same seed
    topic = settings.topic_qapp_events
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    sent = 0
    last_report, sent_at_report = started, 0

    def report(final: bool = False) -> None:
        elapsed = time.monotonic() - started
        window = time.monotonic() - last_report
        recent = (sent - sent_at_report) / window if window > 0 and not final else sent / max(elapsed, 1e-9)
        label = "done" if final else "running"
        print(
            f"simulate {label}: {sent} events to {topic} in {elapsed:.0f} s ({recent:.1f} ev/s, "
            f"{simulation.calls_in_progress} calls in progress, seed {seed})",
            file=sys.stderr,
            flush=True,
        )

    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # releases the half-open client
        raise
    try:
        if progress:
            print(f"simulate: seed {seed}, rate {rate} ev/s, speed x{speed}, topic {topic}", file=sys.stderr, flush=True)
        while True:
            elapsed = time.monotonic() - started
            if duration is not None and elapsed >= duration:
                elapsed = duration
            records = simulation.advance(wall_start + elapsed * speed)
            if loss:
                records = [r for r in records if dropper.random() >= loss]
            deliveries = [
                await producer.send(topic, value=record_json(record), key=record_key(record)) for record in records
            ]
            if deliveries:
                await asyncio.gather(*deliveries)
            sent += len(records)
            if progress and time.monotonic() - last_report >= PROGRESS_EVERY_S:
                report()
                last_report, sent_at_report = time.monotonic(), sent
            if duration is not None and elapsed >= duration:
                break
            await asyncio.sleep(TICK_S)
    finally:
        try:
            await producer.flush()
        finally:
            await producer.stop()
        if progress:
            report(final=True)
    return sent


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


def main(args: argparse.Namespace, settings: Settings) -> int:
    """`python -m app simulate`: run until the duration ends or SIGINT/SIGTERM; exit code."""
    if args.rate <= 0 or getattr(args, "speed", 1.0) <= 0:
        print("simulate: --rate and --speed must be positive", file=sys.stderr)
        return 2
    if not 0.0 <= getattr(args, "loss", 0.0) < 1.0:
        print("simulate: --loss must be at least 0 and below 1 (a share of the events)", file=sys.stderr)
        return 2

    async def supervise() -> int:
        task = asyncio.ensure_future(
            run(settings, rate=args.rate, duration=args.duration, seed=args.seed, speed=getattr(args, "speed", 1.0),
                loss=getattr(args, "loss", 0.0))
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
