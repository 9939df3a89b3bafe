"""How an operator's CRM state is shown: on `operator-crm-status`, pushed on `/ws/operators`,
and beside the telephony state in `GET /operators…` (the `crm_` fields)."""

from __future__ import annotations

from typing import Any

from tables.operatorstatus.status import OperatorCrm, average_handle_time_s, calls_taken_today, time_in_status_today

__all__ = ["crm_fields", "crm_record"]


def crm_record(op: OperatorCrm, now: float) -> dict[str, Any]:
    """The record of `operator-crm-status` (keyed by the operator id) and of the push."""
    return {
        "id": op.operator,
        "status": str(op.status),
        "reason": op.reason,
        "since": op.since,
        "time_in_status_today_s": time_in_status_today(op, now),
        "calls_today": calls_taken_today(op, now),
        "aht_s": average_handle_time_s(op, now),
        "current_call": op.current_call,
        "changed_at": op.last_time,
    }


def crm_fields(op: OperatorCrm, now: float) -> dict[str, Any]:
    """The `crm_` fields of `GET /operators…`."""
    record = crm_record(op, now)
    return {
        "crm_status": record["status"],
        "crm_reason": record["reason"],
        "crm_since": record["since"],
        "crm_time_in_status_today_s": record["time_in_status_today_s"],
        "crm_calls_today": record["calls_today"],
        "crm_aht_s": record["aht_s"],
    }

