"""IVR routing traffic for `python -m app simulate`: passengers' orders as processing and
integration-auth report them on `ivr-commands` (tables/ivr/commands.py).

Each order binds the inbound number its passenger called (`bind_inbound`, sometimes without
a gateway), sends the passenger's calls to the IVR until its estimated time plus a margin
(`route_to_ivr`), and when it finishes sends them back (`route_to_operator`). Some orders
outlive their estimate (the rule expires first), and some finishes are never reported (the
rule ends by its TTL), as the seed's edge cases say. Pure given the clock: `due(now)`.
"""

from __future__ import annotations

import heapq
import itertools
import random

from tables.ivr.commands import BindInbound, IvrCommand, RouteToIvr, RouteToOperator, command_key, command_record

__all__ = ["IvrTraffic"]

INBOUND_NUMBERS = ("+74951234567", "+74951234568", "+78123334455")
GATEWAYS = ("gw-tel-1", "gw-tel-2", None)
PASSENGERS = 20_000
MARGIN_S = 600.0
FINISH_UNREPORTED = 0.05  # finishes whose route_to_operator never comes


class IvrTraffic:
    def __init__(self, seed: int, orders_per_s: float, start: float, prefix: str = "sim") -> None:
        self.rnd = random.Random(seed)
        self.orders_per_s = orders_per_s
        self.prefix = prefix
        self.next_order_at = start + self._gap()
        self.scheduled: list[tuple[float, int, IvrCommand]] = []  # (when, tie-break, command)
        self.ticket = itertools.count()
        self.count = 0
        self.sent = 0

    def _gap(self) -> float:
        return self.rnd.expovariate(self.orders_per_s) if self.orders_per_s > 0 else float("inf")

    def due(self, now: float) -> list[tuple[bytes, bytes]]:
        """The (key, value) records of every command due by `now`, in time order."""
        while self.next_order_at <= now:
            self._order(self.next_order_at)
            self.next_order_at += self._gap()
        out = []
        while self.scheduled and self.scheduled[0][0] <= now:
            _, _, command = heapq.heappop(self.scheduled)
            out.append((command_key(command).encode(), command_record(command)))
        self.sent += len(out)
        return out

    def _order(self, at: float) -> None:
        self.count += 1
        order = f"{self.prefix}-order-{self.count}"
        phone = f"+7916{self.rnd.randrange(PASSENGERS):07d}"
        estimate = self.rnd.uniform(300, 2400)  # the order's estimated time
        self._at(at, BindInbound(order, self.rnd.choice(INBOUND_NUMBERS), self.rnd.choice(GATEWAYS), at + 86400, at))
        self._at(at + 0.05, RouteToIvr(phone, order, at + estimate + MARGIN_S, at + 0.05))
        if self.rnd.random() >= FINISH_UNREPORTED:
            finish = at + estimate * self.rnd.uniform(0.3, 1.3)  # some outlive their estimate
            self._at(finish, RouteToOperator(phone, order, finish))

    def _at(self, when: float, command: IvrCommand) -> None:
        heapq.heappush(self.scheduled, (when, next(self.ticket), command))
