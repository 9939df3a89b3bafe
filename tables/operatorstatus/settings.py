"""Operator status's settings (README "Configuration"), read once from the environment."""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

from pydantic import Field, field_validator

from app.ami import parse_url
from app.settings import DomainSettings

__all__ = ["OperatorStatusSettings", "operator_status_settings"]


class OperatorStatusSettings(DomainSettings):
    # Asterisk's manager interface (`ami://user:secret@host:port`); unset: no pause sync,
    # no reconciliation, no AMI endpoint events (the CRM status works the same)
    ami_url: Optional[str] = None
    ami_action_timeout_s: float = Field(5.0, gt=0)
    ami_reconcile_s: float = Field(60.0, gt=0)  # how often QueueStatus is read to repair drift
    ami_retry_max_s: float = Field(30.0, gt=0)  # the longest wait between retries of a pause

    @field_validator("ami_url", mode="before")
    @classmethod
    def _ami_url_well_formed(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None  # empty: no AMI, as unset
            try:
                parse_url(value)
            except ValueError as exc:  # the message never holds the secret
                raise ValueError(str(exc)) from None
        return value

    # topic names (defaults per SPEC.md); `operator-status` is the call center's telephony view
    topic_operator_commands: str = "operator-commands"
    topic_sip_registrations: str = "sip-registrations"
    topic_operator_status: str = "operator-status"
    topic_operator_crm_status: str = "operator-crm-status"


@lru_cache(maxsize=1)
def operator_status_settings() -> OperatorStatusSettings:
    return OperatorStatusSettings()
