"""The published schemas agree with what the pure code produces."""

from __future__ import annotations

import orjson

from app import models
from tables.callcenter.calls import apply_call_event
from tables.callcenter.operators import apply_operator_event
from tables.callcenter.queue_log import interpret, parse_line, to_json
from tables.callcenter.queues import QueueState, apply_waiting
from tables.callcenter.views import call_view, operator_view, queue_status_view

T = 1_700_000_000.0
LINES = [
    f"{T}|NONE|support|SIP/1|ADDMEMBER|",
    f"{T + 1}|c1|support|NONE|ENTERQUEUE||+79160000000|1",
    f"{T + 5}|c1|support|SIP/1|CONNECT|4|c1.2|1",
    f"{T + 65}|c1|support|SIP/1|COMPLETEAGENT|4|60|1",
]


def test_the_json_form_of_every_record_fits_the_qapp_events_schema() -> None:
    for line in LINES:
        models.QueueLogJson.model_validate(to_json(parse_line(line)))


def test_call_operator_and_queue_views_fit_their_topic_schemas() -> None:
    events = [interpret(parse_line(line)) for line in LINES]
    call = None
    op = None
    queue = QueueState("support")
    for e in events:
        if hasattr(e, "callid"):
            outcome = apply_call_event(call, e)
            call = outcome.call
            for change in outcome.waiting:
                queue = apply_waiting(queue, change)
        if hasattr(e, "agent") and e.agent != "NONE":
            op = apply_operator_event(op, e).operator
    models.CallStatus.model_validate_json(orjson.dumps(call_view(call)))
    models.OperatorStatus.model_validate_json(orjson.dumps(operator_view(op, T + 70)))
    models.QueueStatus.model_validate_json(orjson.dumps(queue_status_view(queue, [], T + 70, 60)))
