"""Who is who in Asterisk: a queue member's name and its interface.

Asterisk writes a queue member's *name* in queue_log's agent column (`membername` in
queues.conf or `AddQueueMember`; the interface itself when there is none), and that name is
the operator's id everywhere here. Its actions want the *interface* (`QueuePause
Interface=PJSIP/1001`), and its endpoint events speak of interfaces too. Asterisk says both
in its `QueueStatus` answer (`Name`, `Location`, `StateInterface`) and in `QueueMemberAdded`
events (`MemberName`, `Interface`); a deployment without AMI sets them
(`OPERATOR_INTERFACES`). What Asterisk says wins over the setting. An operator nobody told
of is its own interface (a member added without a name).

Pure: `Identities` is a value; `learned` and `heard` answer a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

__all__ = ["Identities", "identities_from_setting", "member_added"]


@dataclass(frozen=True)
class Identities:
    """Each operator's interface (by its name), and each interface's (and state interface's) operator."""

    interfaces: Mapping[str, str] = field(default_factory=dict)  # name -> interface
    names: Mapping[str, str] = field(default_factory=dict)  # interface or state interface -> name
    from_asterisk: frozenset[str] = frozenset()  # the names Asterisk told of (a setting no longer overrides them)

    def interface_of(self, operator: str) -> str:
        """Where Asterisk's actions reach `operator`."""
        return self.interfaces.get(operator, operator)

    def operator_of(self, name_or_interface: str) -> str:
        """The operator's id (its member name) from either of its names."""
        if name_or_interface in self.interfaces:
            return name_or_interface
        return self.names.get(name_or_interface, name_or_interface)

    def learned(self, members: Iterable[tuple[str, str, str]], from_asterisk: bool = True) -> "Identities":
        """With these (name, interface, state interface) triples known; one without a name of
        its own (the name is the interface) says nothing. The same map back when nothing is new."""
        interfaces, names, told = dict(self.interfaces), dict(self.names), set(self.from_asterisk)
        for name, interface, state_interface in members:
            if not name or not interface or name == interface:
                continue
            if not from_asterisk and name in told:
                continue  # Asterisk's word stands
            old = interfaces.get(name)
            if old is not None and old != interface:
                names = {k: v for k, v in names.items() if v != name}  # moved: the old interfaces are no longer its
            interfaces[name] = interface
            for alias in (interface, state_interface):
                if alias and alias != name:
                    names[alias] = name
            if from_asterisk:
                told.add(name)
        if interfaces == self.interfaces and names == self.names and told == self.from_asterisk:
            return self
        return Identities(interfaces, names, frozenset(told))


def identities_from_setting(setting: Mapping[str, str]) -> Identities:
    """The map `OPERATOR_INTERFACES` sets: {name: interface}."""
    return Identities().learned(((name, interface, "") for name, interface in setting.items()), from_asterisk=False)


def member_added(event: Mapping[str, str]) -> Optional[tuple[str, str, str]]:
    """(name, interface, state interface) of a `QueueMemberAdded` event (or a `QueueMember` of
    `QueueStatus`), whichever Asterisk wrote them as (1.8: `Location`, `MemberName`; 12+:
    `Interface`; QueueStatus: `Name`, `Location`); None for any other event."""
    if event.get("Event") not in ("QueueMemberAdded", "QueueMember"):
        return None
    interface = event.get("Interface") or event.get("Location") or ""
    name = event.get("MemberName") or event.get("Name") or interface
    if not interface:
        return None
    return name, interface, event.get("StateInterface", "")
