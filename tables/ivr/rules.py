"""IVR routing's rules: pure functions over frozen dataclasses, time passed in.

Two kinds of state, each keyed like the commands that change it (tables/ivr/commands.py):

- a `RoutingRule` per passenger's phone (E.164): the orders that hold the passenger's calls
  for the IVR (`holds`, each with its expiry) and the orders that finished lately
  (`finished`). Calls go to the IVR while any hold is live; with several orders the latest
  expiry counts. A finished order is remembered for a while, so that a call the telephony
  still sends to the IVR can be told "that order finished" and sent on, and so that a
  `route_to_ivr` of that order that arrives late cannot bring it back;
- a `Binding` per order: the inbound number the passenger called (and its gateway), which
  the IVR calls back from.

Both expire by themselves: `expire_rule` and `expire_binding` at the stream's time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Optional

from tables.ivr.commands import BindInbound, RouteToIvr, RouteToOperator

__all__ = [
    "Binding", "CallBack", "Finished", "Hold", "Reason", "Routing", "RoutingRule", "Source", "Target",
    "apply_binding", "apply_rule_command", "binding_live", "call_back", "expire_binding", "expire_rule",
    "published_rule", "routing_of",
]


class Target(StrEnum):
    IVR = "ivr"
    OPERATOR = "operator"


class Reason(StrEnum):
    """Why `GET /routing` answers as it does."""

    ACTIVE_ORDER = "active_order"  # a live order holds the passenger's calls for the IVR
    NO_RULE = "no_rule"  # none was made (or it is long gone): an operator
    ORDER_FINISHED = "order_finished"  # the order finished: send the call on to an operator
    RULE_EXPIRED = "rule_expired"  # its TTL passed (a removal that never came)


class Source(StrEnum):
    BINDING = "binding"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Hold:
    order_id: str
    expires_at: float
    since: float  # `at` of the latest command that set it


@dataclass(frozen=True, slots=True)
class Finished:
    order_id: str
    at: float  # when it finished (the command's `at`)
    keep_until: float  # remembered until then


@dataclass(frozen=True, slots=True)
class RoutingRule:
    phone: str
    holds: tuple[Hold, ...] = ()  # by order id
    finished: tuple[Finished, ...] = ()  # by order id
    cleared: Optional[Finished] = None  # the latest route_to_operator for every order (order_id "")

    @classmethod
    def from_json(cls, d: dict) -> "RoutingRule":
        """From its stored form: the dataclass as orjson writes it (app/state.py)."""
        cleared = d.get("cleared")
        return cls(d["phone"], tuple(Hold(**h) for h in d["holds"]), tuple(Finished(**f) for f in d["finished"]),
                   None if cleared is None else Finished(**cleared))


@dataclass(frozen=True, slots=True)
class Routing:
    """What `GET /routing` answers for a phone."""

    target: Target
    order_id: Optional[str]
    expires_at: Optional[float]
    reason: Reason


@dataclass(frozen=True, slots=True)
class Binding:
    order_id: str
    inbound_number: str
    gateway: Optional[str]
    expires_at: float
    since: float  # `at` of the command that set it

    @classmethod
    def from_json(cls, d: dict) -> "Binding":
        return cls(**d)


@dataclass(frozen=True, slots=True)
class CallBack:
    """What `GET /make_call` answers for an order."""

    caller_number: str
    gateway: str
    source: Source
    reason: Optional[str] = None  # why the defaults: "no_binding" | "binding_expired"


# --- routing rules ----------------------------------------------------------------------------


def apply_rule_command(rule: Optional[RoutingRule], command: RouteToIvr | RouteToOperator,
                       finished_kept_s: float) -> Optional[RoutingRule]:
    """The rule after `command` (None: nothing left to keep). A command older than what the
    rule knows of its order changes nothing; the same command twice changes nothing more."""
    rule = rule or RoutingRule(command.phone)
    if isinstance(command, RouteToIvr):
        after = _route_to_ivr(rule, command)
    else:
        after = _route_to_operator(rule, command, finished_kept_s)
    return after if after.holds or after.finished or after.cleared else None


def _route_to_ivr(rule: RoutingRule, command: RouteToIvr) -> RoutingRule:
    done = _find(rule.finished, command.order_id)
    if (done is not None and done.at >= command.at) or (rule.cleared is not None and rule.cleared.at >= command.at):
        return rule  # the order finished after this command was sent: it arrived late
    hold = _find(rule.holds, command.order_id)
    if hold is None:
        hold = Hold(command.order_id, command.expires_at, command.at)
    else:  # create or extend: the later expiry stays
        hold = Hold(hold.order_id, max(hold.expires_at, command.expires_at), max(hold.since, command.at))
    # placed again after it finished: its finish stays remembered, so a replay of a command
    # from before the finish still changes nothing
    return replace(rule, holds=_put(rule.holds, hold))


def _route_to_operator(rule: RoutingRule, command: RouteToOperator, finished_kept_s: float) -> RoutingRule:
    if command.order_id is None:  # every order of the passenger that was placed before it
        ending = [h for h in rule.holds if h.since <= command.at]
        if rule.cleared is None or rule.cleared.at < command.at:
            rule = replace(rule, cleared=Finished("", command.at, command.at + finished_kept_s))
    else:
        hold = _find(rule.holds, command.order_id)
        if hold is None:  # unknown here (never seen, or its rule expired): remember the finish anyway
            known = _find(rule.finished, command.order_id)
            if known is not None and known.at >= command.at:
                return rule
            done = Finished(command.order_id, command.at, command.at + finished_kept_s)
            return replace(rule, finished=_put(rule.finished, done))
        if hold.since > command.at:
            return rule  # routed to the IVR again after this command was sent
        ending = [hold]
    finished = rule.finished
    for h in ending:
        finished = _put(finished, Finished(h.order_id, command.at, max(h.expires_at, command.at + finished_kept_s)))
    gone = {h.order_id for h in ending}
    return replace(rule, holds=tuple(h for h in rule.holds if h.order_id not in gone), finished=finished)


def expire_rule(rule: RoutingRule, now: float) -> Optional[RoutingRule]:
    """The rule at `now`: expired holds and finished orders past their keeping dropped (None: all)."""
    holds = tuple(h for h in rule.holds if h.expires_at > now)
    finished = tuple(f for f in rule.finished if f.keep_until > now)
    cleared = rule.cleared if rule.cleared is not None and rule.cleared.keep_until > now else None
    if not holds and not finished and cleared is None:
        return None
    if len(holds) == len(rule.holds) and len(finished) == len(rule.finished) and cleared == rule.cleared:
        return rule
    return replace(rule, holds=holds, finished=finished, cleared=cleared)


def routing_of(rule: Optional[RoutingRule], now: float) -> Routing:
    """Where a call from the rule's phone goes at `now`, and why."""
    if rule is None:
        return Routing(Target.OPERATOR, None, None, Reason.NO_RULE)
    live = [h for h in rule.holds if h.expires_at > now]
    if live:
        best = max(live, key=lambda h: (h.expires_at, h.since, h.order_id))
        return Routing(Target.IVR, best.order_id, best.expires_at, Reason.ACTIVE_ORDER)
    finished = [f for f in (*rule.finished, rule.cleared) if f is not None and f.keep_until > now]
    expired = max(rule.holds, key=lambda h: (h.expires_at, h.order_id), default=None)
    if finished and (expired is None or max(f.at for f in finished) >= expired.expires_at):
        last = max(finished, key=lambda f: (f.at, f.order_id))
        return Routing(Target.OPERATOR, last.order_id or None, None, Reason.ORDER_FINISHED)
    if expired is not None:
        return Routing(Target.OPERATOR, expired.order_id, expired.expires_at, Reason.RULE_EXPIRED)
    return Routing(Target.OPERATOR, None, None, Reason.NO_RULE)


def published_rule(rule: Optional[RoutingRule], now: float) -> Optional[dict]:
    """The rule's record on `ivr-routing-rules` at `now`; None (a tombstone) when calls from
    the phone go to an operator."""
    routing = routing_of(rule, now)
    if rule is None or routing.target != Target.IVR:
        return None
    live = sorted((h for h in rule.holds if h.expires_at > now), key=lambda h: h.order_id)
    return {"phone": rule.phone, "target": str(routing.target), "order_id": routing.order_id,
            "expires_at": routing.expires_at, "orders": [{"order_id": h.order_id, "expires_at": h.expires_at} for h in live]}


# --- inbound-number bindings --------------------------------------------------------------------


def apply_binding(binding: Optional[Binding], command: BindInbound) -> Binding:
    """The order's binding after `command`: the latest command wins (an older one arriving late changes nothing)."""
    if binding is not None and binding.since > command.at:
        return binding
    return Binding(command.order_id, command.inbound_number, command.gateway, command.expires_at, command.at)


def binding_live(binding: Optional[Binding], now: float) -> bool:
    return binding is not None and binding.expires_at > now


def expire_binding(binding: Binding, now: float) -> Optional[Binding]:
    return binding if binding_live(binding, now) else None


def call_back(binding: Optional[Binding], now: float, default_number: str, default_gateway: str) -> CallBack:
    """The number and gateway to call an order's passenger back from at `now`: the order's
    binding while it lives (its gateway, or the default one), else the defaults."""
    if binding is not None and binding_live(binding, now):
        return CallBack(binding.inbound_number, binding.gateway or default_gateway, Source.BINDING)
    reason = "no_binding" if binding is None else "binding_expired"
    return CallBack(default_number, default_gateway, Source.DEFAULT, reason)


def _find(items: tuple, order_id: str):
    return next((item for item in items if item.order_id == order_id), None)


def _put(items: tuple, item):
    """`items` with `item` in place of the one of its order (sorted by order id: one form per state)."""
    return tuple(sorted((*(i for i in items if i.order_id != item.order_id), item), key=lambda i: i.order_id))
