"""IVR routing's settings (README "Configuration"), read once from the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator

from app.settings import DomainSettings
from tables.ivr.phones import normalise

__all__ = ["IvrSettings", "ivr_settings"]

DAY_S = 86400.0


class IvrSettings(DomainSettings):
    # a rule for a passenger's phone lives for the order's estimated time plus this margin
    ivr_margin_s: float = Field(600.0, ge=0)
    ivr_max_ttl_s: float = Field(2 * DAY_S, gt=0)  # no rule or binding is kept longer than this
    ivr_binding_ttl_s: float = Field(DAY_S, gt=0)  # a binding sent without an expiry lives this long
    # the call-back number and gateway of an order without a (live) binding
    ivr_default_caller_number: str = "+74950000000"
    ivr_default_gateway: str = "default"
    ivr_default_region: str = Field("RU", min_length=2, max_length=2)  # numbers written without a country code
    # how often (in stream time) each partition looks for expired rules and bindings
    ivr_rule_sweep_s: float = Field(1.0, gt=0)
    ivr_binding_sweep_s: float = Field(60.0, gt=0)
    # topic names (defaults per SPEC.md)
    topic_ivr_commands: str = "ivr-commands"
    topic_ivr_routing_rules: str = "ivr-routing-rules"

    @field_validator("ivr_default_caller_number")
    @classmethod
    def _caller_number_callable(cls, value: str) -> str:
        return normalise(value)  # a bad default fails the start, with the reason

    @field_validator("ivr_default_region")
    @classmethod
    def _region_upper(cls, value: str) -> str:
        return value.upper()


@lru_cache(maxsize=1)
def ivr_settings() -> IvrSettings:
    return IvrSettings()
