"""Support chat's settings (README "Configuration"), read once from the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from app.settings import DomainSettings

__all__ = ["ChatSettings", "chat_settings"]


class ChatSettings(DomainSettings):
    # queues whose chats go to available operators without an accept ("*": every queue);
    # the others wait until an operator accepts them
    chat_auto_assign_queues: str = ""
    chat_default_queue: str = "general"
    chat_operator_capacity: int = Field(3, ge=1, le=100)  # open chats per operator unless set otherwise
    # an operator whose every connection is gone this long has their chats handed on
    chat_operator_grace_s: float = Field(60.0, ge=0)
    # a connection not heard of this long is gone (its worker died without saying so)
    chat_presence_interval_s: float = Field(10.0, gt=0)
    chat_presence_lease_s: float = Field(35.0, gt=0)
    chat_tick_s: float = Field(1.0, gt=0)  # how often time reaches the desk
    chat_max_text: int = Field(4000, ge=1, le=100_000)  # characters of one message
    chat_rate_per_s: float = Field(5.0, gt=0)  # messages and commands per user and worker, sustained
    chat_rate_burst: int = Field(20, ge=1)  # ... and at once
    chat_history_page: int = Field(200, ge=1, le=5000)  # messages per history answer at most
    # how long each worker's fetch of the notices (chat-outbox) may wait at the broker when
    # none come: each worker asks this often when the chat is quiet
    chat_push_fetch_wait_ms: int = Field(200, ge=1, le=1000)
    chat_outcome_wait_s: float = Field(5.0, gt=0)  # how long a REST command waits for the desk's answer
    chat_max_priority: int = Field(10, ge=1)
    # a closed chat and its messages are kept this long, then deleted (looked for every CHAT_SWEEP_S)
    chat_keep_closed_s: float = Field(30 * 86400.0, gt=0)
    chat_sweep_s: float = Field(600.0, gt=0)
    # topic names (defaults per SPEC.md and the seed)
    topic_chat_events: str = "chat_events"
    topic_support_queue: str = "support_queue"
    topic_operator_events: str = "operator_events"
    topic_admin_actions: str = "admin_actions"
    topic_chat_assignments: str = "chat_assignments"

    @property
    def auto_assign_queues(self) -> frozenset[str]:
        return frozenset(q.strip() for q in self.chat_auto_assign_queues.split(",") if q.strip())


@lru_cache(maxsize=1)
def chat_settings() -> ChatSettings:
    return ChatSettings()
