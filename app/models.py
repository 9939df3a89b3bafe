"""Public message schemas: what other services read from and write to our topics.

The values are JSON (orjson). These pydantic models are the contract: tests validate
every record the service writes against them, and other services may import them.
"""

from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CallStatus", "CurrentCall", "DeadLetter", "Message", "OperatorAnswer", "OperatorCrmStatus", "OperatorStatus", "QueueLogJson",
    "QueueMetricsRecord", "QueueOperators", "QueueStatus", "WindowMetrics",
]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueLogJson(Message):
    """The JSON form of a `qapp-events` record (the raw queue_log line is the other form)."""

    time: float
    callid: str = "NONE"
    queue: str = "NONE"
    agent: str = "NONE"
    event: str
    data: list[Union[str, int, float]] = []


class DeadLetter(Message):
    source_topic: str
    partition: int
    offset: int
    timestamp: Optional[float] = None
    key: Optional[str] = None
    reason: str
    value: Optional[str] = None  # the original bytes (their first 16 kB) as text, when they are UTF-8
    value_b64: Optional[str] = None  # the original bytes, their first 16 kB; null for a null value
    value_size: Optional[int] = None  # bytes in the original value; null for a null value
    value_sha256: Optional[str] = None  # of the whole original value
    value_truncated: bool = False  # the value was longer than what the letter carries
    note: Optional[str] = None  # set when the record could not be fully described
    rejected_at: float


class CallStatus(Message):
    """`call-status`, keyed by call id."""

    callid: str
    queue: str
    status: str  # waiting | talking | completed | abandoned | exited | transferred | lost | closed
    entered_at: Optional[float]
    answered_at: Optional[float]
    ended_at: Optional[float]
    callerid: str
    position: Optional[int]
    agent: Optional[str]
    holdtime_s: Optional[float]
    calltime_s: Optional[float]
    rings: int
    end_reason: Optional[str]
    last_time: float


class CurrentCall(Message):
    callid: str
    queue: str
    since: float


class OperatorStatus(Message):
    """`operator-status`, keyed by operator (agent) id; also `GET /operators/{id}`."""

    id: str
    name: Optional[str]
    state: str  # offline | available | paused | on_call
    since: Optional[float]
    paused: bool
    paused_queues: list[str]
    pause_reason: Optional[str]
    queues: list[str]
    current_call: Optional[CurrentCall]
    calls_today: int
    talk_time_today_s: float
    aht_s: Optional[float]
    time_in_state_today_s: dict[str, float]
    last_event_at: float
    idle_resets: int


class OperatorAnswer(OperatorStatus):
    """`GET /operators/{id}` and the elements of `GET /operators`: the telephony state above,
    and beside it the CRM status (absent for an operator the CRM never heard of)."""

    crm_status: Optional[str] = None  # ONLINE OFFLINE PAUSE BREAK TRAINING MEETING WRAP_UP DO_NOT_DISTURB ON_CALL
    crm_reason: Optional[str] = None
    crm_since: Optional[float] = None
    crm_time_in_status_today_s: Optional[dict[str, float]] = None
    crm_calls_today: Optional[int] = None
    crm_aht_s: Optional[float] = None  # (talk + wrap-up) per call today


class OperatorCrmStatus(Message):
    """`operator-crm-status`, keyed by operator id; also each push of `GET /ws/operators`."""

    id: str
    status: str
    reason: str
    since: Optional[float]
    time_in_status_today_s: dict[str, float]
    calls_today: int
    aht_s: Optional[float]
    current_call: Optional[str]
    changed_at: float


class WindowMetrics(Message):
    start: float
    end: float
    entered: int
    answered: int
    abandoned: int
    unanswered: int
    completed: int
    answered_within_sl: int
    avg_wait_s: Optional[float]
    max_wait_s: Optional[float]
    avg_talk_s: Optional[float]
    service_level_pct: Optional[float]
    asterisk_sl_pct: Optional[float]
    abandon_rate_pct: Optional[float]


class QueueOperators(Message):
    logged_in: int
    paused: int
    on_call: int
    available: int


class QueueStatus(Message):
    """`queue-status`, keyed by queue; one element of `GET /queues/status`."""

    generated_at: Optional[float] = None
    queue: str
    calls_waiting: int
    longest_wait_s: Optional[float]
    operators: QueueOperators
    lost_calls: int
    late_events: int
    current_window: WindowMetrics
    last_15m: WindowMetrics


class QueueMetricsRecord(WindowMetrics):
    """`queue-metrics`, keyed `queue|start`: one record per queue per closed window."""

    queue: str
    window_s: int
    final: bool
