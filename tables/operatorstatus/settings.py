"""Operator status's settings (README "Configuration"), read once from the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator

from app.ami import AmiUrlSetting
from app.settings import DomainSettings

__all__ = ["OperatorStatusSettings", "operator_status_settings"]


class OperatorStatusSettings(DomainSettings):
    # Asterisk's manager interface (`ami://user:secret@host:port`); unset: no pause sync,
    # no reconciliation, no AMI endpoint events (the CRM status works the same)
    ami_url: AmiUrlSetting = None
    ami_action_timeout_s: float = Field(5.0, gt=0)
    ami_reconcile_s: float = Field(60.0, gt=0)  # how often QueueStatus is read to repair drift
    ami_retry_max_s: float = Field(30.0, gt=0)  # the longest wait between retries of a pause
    # queue members' interfaces by their names, as JSON ({"Alice": "PJSIP/1001"}), for
    # deployments without AMI (with it, Asterisk's QueueStatus and member events tell them)
    operator_interfaces: dict[str, str] = {}

    @field_validator("operator_interfaces")
    @classmethod
    def _interfaces_well_formed(cls, value: dict[str, str]) -> dict[str, str]:
        for name, interface in value.items():
            for what, text in (("name", name), ("interface", interface)):
                if not text.strip() or len(text) > 128 or any(ord(c) < 32 or ord(c) == 127 for c in text):
                    raise ValueError(f"operator {what} {text[:40]!r}: 1-128 printable characters")
        return value

    # topic names (defaults per SPEC.md); `operator-activity` is the call center's account of
    # what each operator did (the same variable as the call center's)
    topic_operator_commands: str = "operator-commands"
    topic_sip_registrations: str = "sip-registrations"
    topic_operator_activity: str = "operator-activity"
    topic_operator_crm_status: str = "operator-crm-status"


@lru_cache(maxsize=1)
def operator_status_settings() -> OperatorStatusSettings:
    return OperatorStatusSettings()
