"""Fields one domain adds to another's answers, without either importing the other.

Names too: an operator's id is the queue member's name, and the operator-status domain
knows each one's Asterisk interface (`PJSIP/1001` for `Alice`); a domain that resolves
other names of an operator registers a resolver, and `GET /operators/{id}` takes either.

`GET /operators…` is the call center's answer, and it shows the CRM status of the
operator-status domain beside the telephony state (SPEC.md). Neither domain imports the
other: the one that adds fields registers an `OperatorFacet` here, the one that answers
asks every registered facet. Both read tables partitioned by the operator id, so the
worker that owns an operator's telephony state owns its CRM state too (Faust assigns
co-partitioned topics together).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Protocol

__all__ = ["OperatorFacet", "operator_extras", "operator_facets", "operator_named", "operators_known_to_facets",
           "register_operator_facet", "register_operator_names"]


class OperatorFacet(Protocol):
    def fields(self, operator: str, now: float) -> Optional[dict[str, Any]]:
        """The fields this facet adds for `operator` (None: it does not know the operator)."""

    def operators(self) -> Iterable[str]:
        """The operators it knows in the partitions this worker owns."""


operator_facets: list[OperatorFacet] = []


def register_operator_facet(facet: OperatorFacet) -> None:
    operator_facets.append(facet)


def operator_extras(operator: str, now: float) -> Optional[dict[str, Any]]:
    """Every facet's fields for `operator`; None when no facet knows it."""
    merged: Optional[dict[str, Any]] = None
    for facet in operator_facets:
        fields = facet.fields(operator, now)
        if fields is not None:
            merged = {**(merged or {}), **fields}
    return merged


def operators_known_to_facets() -> set[str]:
    return {operator for facet in operator_facets for operator in facet.operators()}


operator_name_resolvers: list[Callable[[str], str]] = []


def register_operator_names(resolve: Callable[[str], str]) -> None:
    """`resolve` answers the operator id another name of it stands for (or the name itself)."""
    operator_name_resolvers.append(resolve)


def operator_named(name: str) -> str:
    for resolve in operator_name_resolvers:
        name = resolve(name)
    return name
