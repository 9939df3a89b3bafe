"""An independent reference: what the panel must show, computed straight from SPEC.md.

Deliberately naive (a replay over dicts) and sharing no code with tables/: it is the
yardstick the service's answers are compared with. Operators follow the evidence when
lines are lost (README, "Order, loss, duplicates"): an operator is on call when its latest
CONNECT has no later end of that call and it has neither left every queue nor logged off
since; a CONNECT, PAUSE or UNPAUSE for a queue proves the membership of an operator never seen
added to or removed from it (a static member, or its ADDMEMBER lost); a REMOVEMEMBER holds until
the next ADDMEMBER.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

UNANSWERED = {"ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"}
ENDS_WAIT = {"CONNECT", *UNANSWERED}
ENDS_TALK = {"COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"}


@dataclass
class Expected:
    waiting: dict = field(default_factory=lambda: defaultdict(dict))  # queue -> callid -> enter time
    members: dict = field(default_factory=lambda: defaultdict(dict))  # queue -> agent -> paused
    removed: set = field(default_factory=set)  # (queue, agent) removed and not added since
    talking: dict = field(default_factory=dict)  # agent -> set of callids
    windows: dict = field(default_factory=dict)  # (queue, start) -> counters
    queues: set = field(default_factory=set)

    def operators(self, queue: str) -> dict:
        members = self.members.get(queue, {})
        on_call = {a for a in members if self.talking.get(a)}
        paused = {a for a, p in members.items() if p}
        return {
            "logged_in": len(members),
            "paused": len(paused),
            "on_call": len(on_call),
            "available": len(set(members) - paused - on_call),
        }

    def window_views(self, queue: str) -> list[dict]:
        return [_view(w) for (q, _), w in sorted(self.windows.items()) if q == queue]


def expect(lines: list[str], window_s: int = 60, sl_s: float = 20.0) -> Expected:
    e = Expected()
    for line in lines:
        f = line.split("|")
        t, callid, queue, agent, event, data = float(f[0]), f[1], f[2], f[3], f[4], f[5:]
        if queue != "NONE":
            e.queues.add(queue)
        if event == "ENTERQUEUE":
            e.waiting[queue][callid] = t
        if event in ENDS_WAIT:
            e.waiting[queue].pop(callid, None)
        if event == "CONNECT":
            e.talking[agent] = {callid}  # one queue call at a time: a new one proves the last one over
            if (queue, agent) not in e.removed:
                e.members[queue].setdefault(agent, False)  # answered there: a member, its ADDMEMBER lost
        if event in ENDS_TALK:
            e.talking.get(agent, set()).discard(callid)
        if event == "ADDMEMBER":
            e.members[queue][agent] = bool(data and data[0] == "PAUSED")
            e.removed.discard((queue, agent))
        if event == "REMOVEMEMBER":
            e.members[queue].pop(agent, None)
            e.removed.add((queue, agent))
            if not any(agent in m for m in e.members.values()):
                e.talking.pop(agent, None)  # left every queue: off its call too
        if event == "AGENTLOGOFF":
            e.talking.pop(agent, None)
        if event in ("PAUSE", "UNPAUSE") and queue != "NONE" and (queue, agent) not in e.removed:
            e.members[queue][agent] = event == "PAUSE"  # a member, even if its ADDMEMBER was lost
        if event in ("PAUSEALL", "UNPAUSEALL"):
            for members in e.members.values():
                if agent in members:
                    members[agent] = event == "PAUSEALL"
        _count(e, t, queue, event, data, window_s, sl_s)
    return e


def _count(e: Expected, t: float, queue: str, event: str, data: list[str], window_s: int, sl_s: float) -> None:
    if event not in {"ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "COMPLETECALLER", *UNANSWERED}:
        return
    start = int(t // window_s) * window_s
    w = e.windows.setdefault((queue, start), {
        "start": float(start), "end": float(start + window_s), "entered": 0, "answered": 0, "abandoned": 0,
        "unanswered": 0, "completed": 0, "answered_within_sl": 0, "waits": [], "all_waits": [], "talks": [],
    })
    if event == "ENTERQUEUE":
        w["entered"] += 1
    elif event == "CONNECT":
        hold = float(data[0])
        w["answered"] += 1
        w["waits"].append(hold)
        w["all_waits"].append(hold)
        w["answered_within_sl"] += hold <= sl_s
    elif event in UNANSWERED:
        w["unanswered"] += 1
        w["abandoned"] += event == "ABANDON"
        wait = data[3] if event == "EXITWITHKEY" else data[2]
        w["all_waits"].append(float(wait))
    else:
        w["completed"] += 1
        w["talks"].append(float(data[1]))


def _view(w: dict) -> dict:
    offered = w["answered"] + w["unanswered"]

    def mean(xs):
        return round(sum(xs) / len(xs), 3) if xs else None

    def pct(n, d):
        return round(100.0 * n / d, 2) if d else None

    return {
        "start": w["start"], "end": w["end"], "entered": w["entered"], "answered": w["answered"],
        "abandoned": w["abandoned"], "unanswered": w["unanswered"], "completed": w["completed"],
        "answered_within_sl": w["answered_within_sl"], "avg_wait_s": mean(w["waits"]),
        "max_wait_s": max(w["all_waits"]) if w["all_waits"] else None, "avg_talk_s": mean(w["talks"]),
        "service_level_pct": pct(w["answered_within_sl"], offered),
        "asterisk_sl_pct": pct(w["answered_within_sl"], w["answered"]),
        "abandon_rate_pct": pct(w["abandoned"], offered),
    }
