"""The panel against Asterisk's own word: `QueueStatus` (SPEC.md "Staleness").

queue_log can lose lines; Asterisk's `QueueStatus` answer says who is a member of which queue
(paused or not) and which calls wait in it right now. Where an AMI connection is configured,
the panel is compared with it, both ways:

- a member Asterisk has and the panel lacks is added (paused as Asterisk says); one the
  panel has and Asterisk does not is removed; a pause that differs is set as Asterisk says;
- a call waiting in Asterisk and unknown to the panel enters its queue (its wait as
  Asterisk counts it: an `entered` in its window, the call did enter); one the panel has
  waiting and Asterisk does not is lost (as the staleness sweep would, no window fact).

A drift is repaired only when two answers in a row show it (`confirmed`): a line still on
its way when Asterisk answered (p99 ~10 s) is not taken for a loss. Repairs are the panel's
own events (`MemberAdded`, `MemberRemoved`, `MemberPaused`, `CallEntered`, `CallSwept`) at
the answer's time, so the rules that order events by time take them like any other.
Pure: no AMI, no tables, time passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Iterable, Mapping, Optional, Union

from tables.callcenter.calls import LOST, CallSwept
from tables.callcenter.events import CallEntered, MemberAdded, MemberPaused, MemberRemoved

__all__ = ["AsteriskEntry", "AsteriskMember", "Drift", "DriftKind", "PanelMember", "confirmed", "find_drift"]


class DriftKind(StrEnum):
    """What differed (`switchboard_staleness_resets_total{kind}`)."""

    MEMBER_MISSING = "ami_member_added"
    MEMBER_GONE = "ami_member_removed"
    PAUSE = "ami_pause_set"
    CALL_MISSING = "ami_call_found"
    CALL_GONE = "ami_call_gone"


@dataclass(frozen=True, slots=True)
class AsteriskMember:
    """A `QueueMember` of the answer: `agent` is the member's name as queue_log writes it (canonical)."""

    queue: str
    agent: str
    paused: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AsteriskEntry:
    """A `QueueEntry` of the answer: a call waiting (its `Uniqueid` is queue_log's call id)."""

    queue: str
    callid: str
    wait_s: float
    callerid: str = ""
    position: Optional[int] = None


@dataclass(frozen=True, slots=True)
class PanelMember:
    queue: str
    agent: str
    paused: bool


Repair = Union[MemberAdded, MemberRemoved, MemberPaused, CallEntered, CallSwept]


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference; two answers showing the same kind, queue and key are the same drift."""

    kind: DriftKind
    queue: str
    key: str  # the agent, or the call id
    paused: bool = False  # members: Asterisk's pause
    reason: str = field(default="", compare=False)
    wait_s: float = field(default=0.0, compare=False)  # calls: their wait in Asterisk's answer
    callerid: str = field(default="", compare=False)
    position: Optional[int] = field(default=None, compare=False)

    def repair(self, now: float) -> tuple[Repair, ...]:
        """The panel's events that repair it, at `now` (the answer's time)."""
        if self.kind == DriftKind.MEMBER_MISSING:
            added = MemberAdded(now, self.queue, self.key, self.paused)
            if self.paused and self.reason:  # ADDMEMBER says PAUSED, never why
                return added, MemberPaused(now, self.queue, self.key, True, self.reason)
            return (added,)
        if self.kind == DriftKind.MEMBER_GONE:
            return (MemberRemoved(now, self.queue, self.key),)
        if self.kind == DriftKind.PAUSE:
            return (MemberPaused(now, self.queue, self.key, self.paused, self.reason if self.paused else ""),)
        if self.kind == DriftKind.CALL_MISSING:
            return (CallEntered(now - max(0.0, self.wait_s), self.key, self.queue, self.callerid, self.position),)
        return (CallSwept(now, self.key, self.queue, LOST),)


def find_drift(members: Iterable[AsteriskMember], entries: Iterable[AsteriskEntry], panel_members: Iterable[PanelMember],
               panel_waiting: Mapping[str, Iterable[str]]) -> set[Drift]:
    """Every difference between Asterisk's answer and the panel. The caller passes both sides
    for the same operators and queues (those its worker owns)."""
    drift: set[Drift] = set()
    asterisk = {(m.queue, m.agent): m for m in members}
    panel = {(m.queue, m.agent): m for m in panel_members}
    for key, member in asterisk.items():
        known = panel.get(key)
        if known is None:
            drift.add(Drift(DriftKind.MEMBER_MISSING, member.queue, member.agent, member.paused, member.reason))
        elif known.paused != member.paused:
            drift.add(Drift(DriftKind.PAUSE, member.queue, member.agent, member.paused, member.reason))
    for key, known in panel.items():
        if key not in asterisk:
            drift.add(Drift(DriftKind.MEMBER_GONE, known.queue, known.agent))
    waiting_in_asterisk = {(e.queue, e.callid): e for e in entries}
    waiting_in_panel = {queue: set(callids) for queue, callids in panel_waiting.items()}
    for entry in waiting_in_asterisk.values():
        if entry.callid not in waiting_in_panel.get(entry.queue, set()):
            drift.add(Drift(DriftKind.CALL_MISSING, entry.queue, entry.callid, wait_s=entry.wait_s,
                            callerid=entry.callerid, position=entry.position))
    for queue, callids in waiting_in_panel.items():
        for callid in callids:
            if (queue, callid) not in waiting_in_asterisk:
                drift.add(Drift(DriftKind.CALL_GONE, queue, callid))
    return drift


def confirmed(before: set[Drift], now: set[Drift]) -> set[Drift]:
    """The drift two answers in a row show (the latest answer's word on each)."""
    return {d for d in now if d in before}
