"""One operator, several names: the canonical id of every agent name a log uses.

Real logs name one person differently: Asterisk 1.4 callback agents log `ADDMEMBER` for
`Local/1127@callback-agent` and `CONNECT` for `Agent/1127`; a migration mixes `SIP/1127`
and `PJSIP/1127`. `OperatorAliases` holds ordered rules (a regular expression that must
match the whole name, and its replacement, `\\1` for a group); the first rule that
matches names the operator everywhere: tables, views, `operator-status`. No rule: the
name as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

__all__ = ["OperatorAliases", "canonical_agent"]


@dataclass(frozen=True)
class OperatorAliases:
    rules: tuple[tuple[re.Pattern[str], str], ...] = ()
    _names: dict[str, str] = field(default_factory=dict, compare=False, repr=False)  # a name's canonical id, once found

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> "OperatorAliases":
        """Rules from (pattern, replacement) pairs, in order; a bad pattern raises ValueError."""
        rules = []
        for pattern, replacement in pairs:
            try:
                rules.append((re.compile(pattern), replacement))
            except re.error as exc:
                raise ValueError(f"operator alias pattern {pattern!r}: {exc}") from None
        return cls(tuple(rules))

    def canonical(self, name: str) -> str:
        known = self._names.get(name)
        if known is None:
            known = self._names[name] = _first_match(self.rules, name)
        return known


def _first_match(rules: tuple[tuple[re.Pattern[str], str], ...], name: str) -> str:
    for pattern, replacement in rules:
        if pattern.fullmatch(name):
            return pattern.sub(replacement, name, count=1)
    return name


def canonical_agent(event: Any, aliases: OperatorAliases) -> Any:
    """`event` with its agent named by its canonical id (events without an agent as they are)."""
    if not aliases.rules:
        return event
    agent = getattr(event, "agent", None)
    if not isinstance(agent, str):
        return event
    canonical = aliases.canonical(agent)
    return event if canonical == agent else replace(event, agent=canonical)
