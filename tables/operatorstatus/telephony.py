"""The call center's view of an operator (`operator-status`), turned into the CRM's inputs.

The call-center domain publishes each operator's telephony view (current call, queues,
calls and talk time today) on `operator-status`, the latest per operator. What the CRM
needs are the transitions: logged in, call answered, call finished, logged out. Each view
is compared with the last one seen: a view may stand for several events (the call center
publishes once per batch), so a call replaced by another is that call finished and the
other answered. A view older than the last one seen changes nothing (a replay). Only a
view that changes what the CRM reads replaces the last one seen: most views (a pause, a
ring, time passing) cost no write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tables.operatorstatus.status import CallAnswered, CallFinished, LoggedIn, LoggedOut, OperatorInput

__all__ = ["TelephonyObserved", "TelephonySeen", "telephony_inputs"]


@dataclass(frozen=True, slots=True)
class TelephonyObserved:
    """One `operator-status` record, as far as the CRM cares."""

    operator: str
    at: float  # the time of the operator's latest telephony event
    logged_in: bool  # a member of at least one queue
    callid: Optional[str]  # the current call
    call_since: Optional[float]
    calls_today: int
    talk_time_today_s: float


@dataclass(frozen=True, slots=True)
class TelephonySeen:
    """The last telephony view applied to an operator's CRM state."""

    operator: str
    at: float = 0.0
    logged_in: bool = False
    callid: Optional[str] = None
    call_since: Optional[float] = None
    calls_today: int = 0
    talk_time_today_s: float = 0.0

    @classmethod
    def from_json(cls, d: dict) -> "TelephonySeen":
        return cls(**d)


def telephony_inputs(seen: Optional[TelephonySeen], view: TelephonyObserved) -> tuple[TelephonySeen, tuple[OperatorInput, ...]]:
    """What the CRM learns from `view`, given the last view seen; all at the view's time."""
    if seen is not None and view.at < seen.at:
        return seen, ()
    before = seen or TelephonySeen(view.operator)
    inputs: list[OperatorInput] = []
    if view.logged_in and not before.logged_in:
        inputs.append(LoggedIn(view.operator, view.at))
    if before.callid is not None and before.callid != view.callid:
        inputs.append(CallFinished(view.operator, before.callid, view.at, _talk_s(before, view)))
    if view.callid is not None and view.callid != before.callid:
        inputs.append(CallAnswered(view.operator, view.callid, view.at))
    if before.logged_in and not view.logged_in:
        inputs.append(LoggedOut(view.operator, view.at))
    if seen is not None and (view.logged_in, view.callid, view.call_since, view.calls_today, view.talk_time_today_s) \
            == (seen.logged_in, seen.callid, seen.call_since, seen.calls_today, seen.talk_time_today_s):
        return seen, ()  # nothing the CRM reads changed (a pause, a ring): the last view seen stays
    after = TelephonySeen(view.operator, view.at, view.logged_in, view.callid, view.call_since, view.calls_today,
                          view.talk_time_today_s)
    return after, tuple(inputs)


def _talk_s(before: TelephonySeen, view: TelephonyObserved) -> float:
    """The finished call's talk time: what today's talk time grew by when it counted just
    that call (exact, from its COMPLETE); else since its answer."""
    if view.calls_today == before.calls_today + 1 and view.talk_time_today_s >= before.talk_time_today_s:
        return round(view.talk_time_today_s - before.talk_time_today_s, 3)
    return max(0.0, view.at - (before.call_since if before.call_since is not None else view.at))
