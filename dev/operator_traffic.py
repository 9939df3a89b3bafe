"""Operator status traffic for `python -m app simulate`: the CRM side of what the simulated
operators do (seed 003), on `operator-commands` and `sip-registrations`.

An `OperatorTraffic` is the simulation's `OperatorObserver`: told every login, pause, unpause,
end of wrap-up and log-off as the queue_log gets it, it says what the softphone and the CRM said around it:

- login: the softphone registers (`registered` true) some seconds before the ADDMEMBERs and
  sets ONLINE (PAUSE for an operator who joins the queues paused);
- pause: the status its reason means (BREAK for lunch and break, TRAINING, MEETING, PAUSE for
  the others; an unnamed pause is now and then a MEETING or DO_NOT_DISTURB), a moment before
  Asterisk's PAUSE: the CRM's QueuePause over AMI is what makes Asterisk write it;
- unpause: ONLINE, a moment before the UNPAUSE;
- log-off: OFFLINE before the REMOVEMEMBERs, the endpoint unregisters seconds after;
- now and then (`sip_drop_p` of the shifts) the endpoint drops without a log-off and registers
  again minutes later, which the service answers with "Auto: SIP not registered". The
  queue_log does not show the drop (it is the same with or without this traffic).

- a call's wrap-up over: ONLINE (the service sets WRAP_UP when a call ends, and the CRM keeps
  it until the operator moves on).

ON_CALL and WRAP_UP are never sent: the service derives them from the calls. Records of one
operator are in time order, none before `start`. Its randomness is its own, so the queue_log
of a seed does not change. `due(until)` pops the records up to `until`; call it once the
simulation has run to `until` (a drop is sent only if its shift was still on at its time).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import os
import random
from dataclasses import dataclass
from typing import Optional, Union

import orjson

__all__ = [
    "OperatorRecord", "OperatorTraffic", "PAUSE_STATUSES", "SIP_DROP_P", "STATUSES", "SipRegistration",
    "StatusCommand",
]

STATUSES = ("ONLINE", "OFFLINE", "PAUSE", "BREAK", "TRAINING", "MEETING", "WRAP_UP", "DO_NOT_DISTURB", "ON_CALL")

# queue_log pause reason -> the CRM statuses an operator picks for it, weighted; the CRM's
# reason is the queue_log's (the CRM writes `reason || status` as Asterisk's pause reason)
PAUSE_STATUSES: dict[str, tuple[tuple[str, float], ...]] = {
    "lunch": (("BREAK", 1.0),),
    "break": (("BREAK", 1.0),),
    "training": (("TRAINING", 1.0),),
    "meeting": (("MEETING", 1.0),),
    "after-call work": (("PAUSE", 0.8), ("DO_NOT_DISTURB", 0.2)),
    "": (("PAUSE", 0.5), ("MEETING", 0.3), ("DO_NOT_DISTURB", 0.2)),
}
OTHER_PAUSE = (("PAUSE", 1.0),)
SET_BY_MANAGER_P = {"TRAINING": 0.6, "MEETING": 0.5}  # a supervisor books these for the operator
MANAGERS = ("anna", "oleg", "irina", "timur")

SIP_DROP_P = 0.05  # share of the shifts whose endpoint drops once (browser closed, network gone)
SIP_DROP_S = (120.0, 600.0)  # how long until it registers again
REGISTER_LEAD_S = (5.0, 60.0)  # the softphone registers this long before the queue login
ONLINE_AFTER_REGISTER_S = (0.5, 3.0)
COMMAND_LEAD_S = (0.2, 1.5)  # a CRM change reaches Asterisk (QueuePause over AMI) this much later
UNREGISTER_AFTER_S = (1.0, 20.0)  # the softphone closes this long after the queue log-off
TICK_S = 0.001  # records of one operator never share a time with the one before


@dataclass(frozen=True, slots=True)
class StatusCommand:
    """An `operator-commands` value: a person changed the operator's CRM status."""

    operator: str
    status: str
    reason: str
    time: float
    by: str  # "operator" or "manager:<name>"


@dataclass(frozen=True, slots=True)
class SipRegistration:
    """A `sip-registrations` value: the operator's softphone endpoint registered or went away."""

    operator: str
    endpoint: str
    registered: bool
    time: float


OperatorRecord = Union[StatusCommand, SipRegistration]


@dataclass(slots=True, eq=False)
class _Shift:
    """One login to log-off of an operator; a planned drop looks at it when its time comes."""

    agent: str
    ended: Optional[float] = None


@dataclass(frozen=True, slots=True)
class _Drop:
    shift: _Shift
    registered: bool  # False: the endpoint goes away; True: it is back


class OperatorTraffic:
    """The CRM commands and SIP registrations of the simulated operators (module docstring)."""

    def __init__(
        self,
        seed: int,
        start: float,
        shift_mean_s: float,
        sip_drop_p: float = SIP_DROP_P,
        topic_commands: Optional[str] = None,
        topic_registrations: Optional[str] = None,
    ) -> None:
        if not 0.0 <= sip_drop_p < 1.0:
            raise ValueError("sip_drop_p must be in [0, 1)")
        self._rng = random.Random(seed)
        self._start = start
        # a drop comes after an exponential time logged in; over exponential shifts of mean
        # `shift_mean_s`, this rate makes `sip_drop_p` of them see one before the log-off
        self._drop_rate = sip_drop_p / ((1.0 - sip_drop_p) * shift_mean_s)
        self.topic_commands = topic_commands or os.environ.get("TOPIC_OPERATOR_COMMANDS", "operator-commands")
        self.topic_registrations = topic_registrations or os.environ.get("TOPIC_SIP_REGISTRATIONS", "sip-registrations")
        self._shifts: dict[str, _Shift] = {}
        self._last: dict[str, float] = {}  # agent -> time of its latest record
        self._scheduled: list[tuple[float, int, Union[OperatorRecord, _Drop]]] = []
        self._ticket = itertools.count()
        self.commands = 0  # popped so far, per topic
        self.registrations = 0

    # --- the simulation's OperatorObserver -----------------------------------------------

    def logged_in(self, at: float, agent: str, paused: bool) -> None:
        shift = self._shifts[agent] = _Shift(agent)
        registered = self._time(agent, at - self._rng.uniform(*REGISTER_LEAD_S), at)
        self._push(SipRegistration(agent, agent, True, registered))
        # the first status: ONLINE, or PAUSE for an operator who joins the queues paused
        self._command(agent, "PAUSE" if paused else "ONLINE", "", "operator",
                      registered + self._rng.uniform(*ONLINE_AFTER_REGISTER_S), at)
        self._done(agent, at)
        if self._drop_rate:  # planned now, so the records never depend on how `due` is called
            down = at + self._rng.expovariate(self._drop_rate)
            self._schedule(down, _Drop(shift, registered=False))
            self._schedule(down + self._rng.uniform(*SIP_DROP_S), _Drop(shift, registered=True))

    def paused(self, at: float, agent: str, reason: str) -> None:
        choices = PAUSE_STATUSES.get(reason, OTHER_PAUSE)
        status = self._rng.choices([s for s, _ in choices], weights=[w for _, w in choices])[0]
        by = "operator"
        if self._rng.random() < SET_BY_MANAGER_P.get(status, 0.0):
            by = f"manager:{self._rng.choice(MANAGERS)}"
        self._command(agent, status, reason, by, at - self._rng.uniform(*COMMAND_LEAD_S), at)
        self._done(agent, at)

    def unpaused(self, at: float, agent: str) -> None:
        self._command(agent, "ONLINE", "", "operator", at - self._rng.uniform(*COMMAND_LEAD_S), at)
        self._done(agent, at)

    def ready(self, at: float, agent: str) -> None:
        """Wrap-up over: the operator sets ONLINE (the CRM keeps WRAP_UP until then, seed 003)."""
        if agent in self._shifts:
            self._command(agent, "ONLINE", "", "operator", at, at)
            self._done(agent, at)

    def logged_off(self, at: float, agent: str) -> None:
        self._command(agent, "OFFLINE", "", "operator", at - self._rng.uniform(*COMMAND_LEAD_S), at)
        gone = self._time(agent, at + self._rng.uniform(*UNREGISTER_AFTER_S), math.inf)
        self._push(SipRegistration(agent, agent, False, gone))
        shift = self._shifts.pop(agent, None)
        if shift is not None:
            shift.ended = at

    # --- output ----------------------------------------------------------------------------

    def due(self, until: float) -> list[OperatorRecord]:
        """The records with time up to `until`, in time order (once the simulation has run to `until`)."""
        out: list[OperatorRecord] = []
        scheduled = self._scheduled
        while scheduled and scheduled[0][0] <= until:
            at, _, item = heapq.heappop(scheduled)
            if isinstance(item, _Drop):
                if item.shift.ended is not None and item.shift.ended <= at:
                    continue  # logged off first: the log-off unregistered the endpoint
                item = SipRegistration(item.shift.agent, item.shift.agent, item.registered, at)
            out.append(item)
        registrations = sum(isinstance(r, SipRegistration) for r in out)
        self.registrations += registrations
        self.commands += len(out) - registrations
        return out

    def wire(self, record: OperatorRecord) -> tuple[str, bytes, bytes]:
        """(topic, key, value) of a record: keyed by the operator id, the value its JSON."""
        topic = self.topic_commands if isinstance(record, StatusCommand) else self.topic_registrations
        return topic, record.operator.encode(), orjson.dumps(dataclasses.asdict(record))

    # --- scheduling ------------------------------------------------------------------------

    def _time(self, agent: str, wanted: float, latest: float) -> float:
        """`wanted`, moved after the operator's previous record or queue_log event and after
        `start`, but not past `latest`."""
        floor = max(self._last.get(agent, -math.inf) + TICK_S, self._start)
        at = round(min(max(wanted, floor), latest), 3)
        self._last[agent] = max(self._last.get(agent, -math.inf), at)
        return at

    def _done(self, agent: str, at: float) -> None:
        """The operator's queue_log event at `at` is written: its next CRM change comes after it."""
        self._last[agent] = max(self._last.get(agent, -math.inf), at)

    def _command(self, agent: str, status: str, reason: str, by: str, wanted: float, latest: float) -> None:
        self._push(StatusCommand(agent, status, reason, self._time(agent, wanted, latest), by))

    def _push(self, record: OperatorRecord) -> None:
        self._schedule(record.time, record)

    def _schedule(self, at: float, item: Union[OperatorRecord, _Drop]) -> None:
        heapq.heappush(self._scheduled, (round(at, 3), next(self._ticket), item))
