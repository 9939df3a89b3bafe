"""What Asterisk should be told, beyond a status change: drift repairs and endpoint events.

- `pause_repairs`: Asterisk's own answer to `QueueStatus` against the CRM: a member whose
  pause differs from what its CRM status implies (the seed's mapping, `asterisk_paused`)
  is paused or unpaused again, in that queue, with the CRM reason. Either direction; an
  operator the CRM does not know, ON_CALL (local to the CRM) and the WRAP_UP after a call
  (Asterisk's wrapuptime) are left alone (`desired_pause`). A member is its operator by
  its name (queue_log's agent), reached at its interface.
- `endpoint_registration`: an AMI event about a SIP endpoint (chan_sip `PeerStatus`,
  PJSIP `ContactStatus`) as a registration change of that interface (whose operator the
  caller names, see identity.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

from tables.operatorstatus.status import OperatorCrm, PauseRequest, desired_pause

__all__ = ["MemberPause", "Registration", "endpoint_registration", "pause_repairs"]


@dataclass(frozen=True, slots=True)
class MemberPause:
    """One queue member as Asterisk reports it: `operator` is its name (the operator's id)."""

    queue: str
    operator: str
    paused: bool


@dataclass(frozen=True, slots=True)
class Registration:
    operator: str
    endpoint: str
    registered: bool


def pause_repairs(members: Iterable[MemberPause], crm_of: Callable[[str], Optional[OperatorCrm]]) -> list[PauseRequest]:
    repairs = []
    for member in members:
        op = crm_of(member.operator)
        if op is None or op.since is None:
            continue
        wanted = desired_pause(op)
        if wanted is not None and wanted != member.paused:
            repairs.append(PauseRequest(member.operator, wanted, op.reason or str(op.status), member.queue))
    return repairs


_PEER_UP = {"registered", "reachable"}
_PEER_DOWN = {"unregistered", "unreachable", "rejected"}
_CONTACT_UP = {"created", "reachable"}
_CONTACT_DOWN = {"removed", "unreachable"}


def endpoint_registration(event: Mapping[str, str]) -> Optional[Registration]:
    """The registration an AMI event tells of, or None (another event, or a state that says nothing)."""
    name = event.get("Event", "")
    if name == "PeerStatus":
        peer, status = event.get("Peer", ""), event.get("PeerStatus", "").lower()
        if not peer or status not in _PEER_UP | _PEER_DOWN:
            return None
        return Registration(peer, peer, status in _PEER_UP)
    if name == "ContactStatus":
        endpoint = event.get("EndpointName") or event.get("AOR") or ""
        status = event.get("ContactStatus", "").lower()
        if not endpoint or status not in _CONTACT_UP | _CONTACT_DOWN:
            return None
        interface = f"PJSIP/{endpoint}"
        return Registration(interface, interface, status in _CONTACT_UP)
    return None
