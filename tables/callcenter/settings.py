"""The call center's settings (README "Configuration"), read once from the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator

from app.ami import AmiUrlSetting
from app.settings import DomainSettings
from tables.callcenter.aliases import OperatorAliases

__all__ = ["CallCenterSettings", "callcenter_settings"]


class CallCenterSettings(DomainSettings):
    # windowed queue metrics
    window_s: int = Field(60, ge=1)
    sl_threshold_s: float = Field(20.0, ge=0)  # answered within this: in the service level
    windows_kept_s: int = Field(24 * 3600, ge=60)
    window_grace_s: float = Field(30.0, ge=0)  # late events (p99 ~10 s) still land before a window is final
    # the staleness sweep: state no event has confirmed for this long is reset
    call_wait_timeout_s: float = 3600.0  # waiting longer: the call is marked lost
    call_talk_timeout_s: float = 4 * 3600.0  # talking longer: the call is closed
    operator_idle_timeout_s: float = 12 * 3600.0  # no event for this long: the operator goes offline
    call_retention_s: float = 24 * 3600.0  # ended calls are forgotten (tombstoned) this long after
    call_retention_sweep_s: float = 600.0  # how often ended calls are looked at for retention
    # Asterisk's manager interface (the same variable as operator status'): where it is set,
    # the panel is reconciled against Asterisk's QueueStatus every AMI_RECONCILE_S (members,
    # pauses, waiting calls), and the guesses of the sweep (a call waiting past
    # CALL_WAIT_TIMEOUT_S lost, an operator idle past OPERATOR_IDLE_TIMEOUT_S offline) wait
    # while Asterisk answers
    ami_url: AmiUrlSetting = None
    ami_reconcile_s: float = Field(60.0, gt=0)
    ami_action_timeout_s: float = Field(5.0, gt=0)
    ami_reconcile_panel: bool = True  # false: the panel heals from queue_log and the sweep only
    # queue calls an operator takes at once (Asterisk's ringinuse=no: one); a CONNECT beyond
    # it proves the operator's oldest current call over, its end lost
    max_calls_per_operator: int = Field(1, ge=1)
    # one operator, several names: ordered [pattern, replacement] pairs, as JSON, e.g.
    # [["Local/(\\d+)@callback-agent", "Agent/\\1"], ["PJSIP/(\\d+)", "SIP/\\1"]]
    operator_aliases: list[tuple[str, str]] = []

    @field_validator("operator_aliases")
    @classmethod
    def _aliases_compile(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        OperatorAliases.of(value)  # a bad pattern fails the start with its name
        return value

    # output topic names (defaults per SPEC.md); the input is `TOPIC_QAPP_EVENTS` (app settings)
    topic_call_status: str = "call-status"
    topic_operator_status: str = "operator-status"
    topic_operator_activity: str = "operator-activity"  # what each operator did, as events (the CRM reads it)
    topic_queue_status: str = "queue-status"
    topic_queue_metrics: str = "queue-metrics"


@lru_cache(maxsize=1)
def callcenter_settings() -> CallCenterSettings:
    return CallCenterSettings()
