"""Fuzzing the edges of a running worker, on the surface the app declares.

Routes and consumed topics are found by walking the app (its aiohttp router and its
agents' topics) in a subprocess with the deployment's settings, so a route or input
topic added by the next system is fuzzed here without new test code. Asserted for every
request: an answer within a second, no 5xx, the error shape for every 4xx; afterwards
`/health` answers. Poison records on every consumed topic: the worker keeps going and
each gets exactly one dead letter.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import MANAGER, SERVICE, consume_all, http_get, http_request, produce

pytestmark = pytest.mark.integration
# the body fuzz sends hundreds of chat commands: what a value does past the edge, not the rate limit
WORKER_ENV = {"CHAT_RATE_PER_S": 100_000, "CHAT_RATE_BURST": 100_000}

def test_the_surface_is_found_by_walking_the_app(surface, deployment):
    assert len(surface["routes"]) >= 10
    internal = {f"{deployment.name}-cc-events", f"{deployment.name}-cc-queues", f"{deployment.name}-ivr-events"}
    assert {deployment.topic("qapp-events"), deployment.topic("ivr-commands"), *internal} <= set(surface["topics"])
    assert {("POST", "/routetoivr"), ("GET", "/routing"), ("GET", "/make_call")} <= {tuple(r) for r in surface["routes"]}


segments = st.one_of(
    st.sampled_from(["support", "SIP/7", "x" * 300, "..", "%2e%2e", "%00", "очередь", "a b", "🙂", "%ZZ", ""]),
    st.text(min_size=0, max_size=40),
)
values = st.one_of(
    st.sampled_from(["NaN", "-inf", "1e309", "1795342520000000000", "", "0", "-1", "1700000000", "yesterday", "%00",
                     "9" * 400]),
    st.floats(allow_nan=True, allow_infinity=True).map(str), st.integers(-10**20, 10**20).map(str), st.text(max_size=30),
)
queries = st.dictionaries(st.sampled_from(["since", "until", "queue", "limit", "cursor", "id", "x"]), values, max_size=4)
tokens = st.sampled_from([None, MANAGER, SERVICE, "test-operator-token", "nonsense", "", "Bearer"])
bodies = st.one_of(st.none(), st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                   st.dictionaries(st.text(max_size=8), st.one_of(st.integers(-2**63, 2**63 - 1), st.text(max_size=8)),
                                   max_size=4)
                   .map(orjson.dumps))
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])


def fill(pattern: str, data) -> str:
    parts = []
    for part in pattern.split("/"):
        if part.startswith("{") and part.endswith("}"):
            parts.append(quote(data.draw(segments), safe="%"))
        else:
            parts.append(part)
    return "/".join(parts)


def send(url: str, method: str, path: str, query: dict, token, body, headers: dict | None = None
         ) -> tuple[int, bytes, float]:
    """One request over a raw socket (so odd paths go out as they are); status, body, seconds."""
    host, port = url.removeprefix("http://").split(":")
    target = path + ("?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items()) if query else "")
    head = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + (body or b"")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    took = time.monotonic() - started
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2], took


def test_every_route_answers_any_request_quickly_in_the_error_shape(surface, worker):
    routes = [tuple(r) for r in surface["routes"]]

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(routes), methods, queries, tokens, bodies, st.data())
    def one(route, method, query, token, body, data):
        _, pattern = route
        path = fill(pattern, data)
        status, payload, took = send(worker.url, method, path, query, token, body)
        where = f"{method} {path} {query} -> {status} {payload[:200]!r}"
        assert took < 1.0, where
        assert status < 500 or (status == 503 and pattern == "/ready"), where
        if status >= 400:
            error = orjson.loads(payload)["error"]
            assert error["code"] and error["message"], where

    one()
    assert http_get(worker.url + "/health", timeout=2)[0] == 200


POISON = [b"", b"\x00\xff\xfe", b"null", b"[]", b"{}", b"[1, 2]", b'[["CallEntered", {}]]',
          b'[["CallEntered", {"time": "soon", "callid": 1, "queue": null, "callerid": "", "position": 1}]]',
          b'[["StreamMark", {"source": 0, "via": -1, "time": 1e999}]]', b'[["Nope", {}]]', b"9" * 20_000, None]


def test_poison_on_every_consumed_topic_is_dead_lettered_once_and_the_worker_keeps_going(surface, deployment, worker):
    letters_before = len(consume_all(deployment.broker.bootstrap, deployment.topic("dead-letters")))
    for topic in surface["topics"]:
        produce(deployment.broker.bootstrap, topic, [(f"poison-{k}".encode(), value) for k, value in enumerate(POISON)])
    want = letters_before + len(POISON) * len(surface["topics"])

    deadline = time.monotonic() + 60
    while True:
        got = consume_all(deployment.broker.bootstrap, deployment.topic("dead-letters"))
        if len(got) >= want or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    poison = [orjson.loads(v) for _, v in got[letters_before:]]
    by_topic = {}
    for letter in poison:
        by_topic.setdefault(letter["source_topic"], []).append(letter)
    counts = {t: sorted(letter["key"] for letter in v) for t, v in by_topic.items()}
    assert {t: len(v) for t, v in counts.items()} == {t: len(POISON) for t in surface["topics"]}, counts
    assert all(letter["reason"] for letter in poison)
    assert http_get(worker.url + "/health", timeout=2)[0] == 200
    status, body = http_get(worker.url + "/queues/status", MANAGER)
    assert status == 200


def test_an_oversized_record_on_every_input_topic_is_a_dead_letter_saying_so(surface, deployment, worker):
    """The README's promise, for every input topic alike: a record over 8 kB is a dead letter
    with reason `oversized record`, whatever it holds (here valid JSON padded with spaces)."""
    inputs = [t for t in surface["topics"] if t.startswith(f"{deployment.name}.")]
    assert deployment.topic("contractor-status") in inputs and deployment.topic("driver-positions") in inputs
    padded = b'{"pad": "' + b"x" * 100_000 + b'"}' + b" " * 10
    for topic in inputs:
        produce(deployment.broker.bootstrap, topic, [(b"oversized", padded)])
    deadline = time.monotonic() + 60
    while True:
        letters = [orjson.loads(v) for _, v in consume_all(deployment.broker.bootstrap, deployment.topic("dead-letters"))]
        reasons = {letter["source_topic"]: letter["reason"] for letter in letters if letter["key"] == "oversized"}
        if set(reasons) >= set(inputs) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert set(reasons) == set(inputs), set(inputs) - set(reasons)
    wrong = {t: r for t, r in reasons.items() if not r.startswith("oversized record")}
    assert not wrong, wrong


def test_a_record_timed_far_ahead_on_any_input_topic_is_a_dead_letter_and_pins_nothing(deployment, worker):
    """Issue 24: only the call center refused records from the future; one operator-commands
    record ten years ahead pinned that operator (a later ONLINE changed nothing), an IVR hold
    timed in 2096 held the passenger for decades. Every timed input is now refused past
    MAX_FUTURE_SKEW_S, with the reason, and the next honest record takes effect."""
    from tables.deptrans.drivers import PositionReported, StatusChanged
    from tables.deptrans.records import contractor_status_record, position_record
    from tables.ivr.commands import RouteToIvr
    from tables.ivr.commands import command_record as ivr_record
    from tables.operatorstatus.records import command_record, registration_record

    ahead = time.time() + 10 * 365 * 86400
    records = {
        "operator-commands": command_record("SIP/7771", "BREAK", "", ahead, "crm"),
        "sip-registrations": registration_record("SIP/7771", "SIP/7771", False, ahead),
        "contractor-status": contractor_status_record(StatusChanged("park1", "drv-ahead", "online", ahead)),
        "driver-positions": position_record(PositionReported("park1", "drv-ahead", 55.75, 37.61, ahead)),
        "ivr-commands": ivr_record(RouteToIvr("+79161110777", "order-ahead", ahead + 3600, ahead)),
        "chat_events": orjson.dumps({"type": "chat_created", "chat_id": "p-ahead", "client_id": "c-ahead", "at": ahead}),
        "operator_events": orjson.dumps({"type": "operator_connected", "operator_id": "o-ahead", "connection": "k",
                                         "at": ahead}),
        "qapp-events": f"{int(ahead)}|c-ahead|support|NONE|ENTERQUEUE||+79990001003|1".encode(),
    }
    for public, value in records.items():
        produce(deployment.broker.bootstrap, deployment.topic(public), [(b"ahead", value)])
    wanted = {deployment.topic(public) for public in records}
    deadline = time.monotonic() + 60
    while True:
        letters = [orjson.loads(v) for _, v in consume_all(deployment.broker.bootstrap, deployment.topic("dead-letters"))]
        reasons = {letter["source_topic"]: letter["reason"] for letter in letters if letter["key"] == "ahead"}
        if set(reasons) >= wanted or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert set(reasons) == wanted, wanted - set(reasons)
    wrong = {t: r for t, r in reasons.items() if "in the future" not in r}
    assert not wrong, wrong
    # the operator is not pinned: an honest command now takes effect
    status, answer = http_request("POST", f"{worker.url}/operators/{quote('SIP/7771', safe='')}/status",
                                  {"status": "ONLINE"}, MANAGER)
    assert status == 202, answer
    deadline = time.monotonic() + 20
    while True:
        status, view = http_get(f"{worker.url}/operators/{quote('SIP/7771', safe='')}", MANAGER)
        if (status == 200 and view.get("crm_status") == "ONLINE") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200 and view.get("crm_status") == "ONLINE", (status, view)


# --- every POST body, every field, every kind of bad value ---------------------------------------

ADMIN, DRIVER = "test-admin-token", "test-driver-token"
DRIVER_HEADERS = {"X-Park-Id": "fuzzpark", "X-Driver-Profile-Id": "d"}
# route -> (token, extra headers, good bodies): each field of each is replaced by every value of BAD
POST_BODIES: dict[str, tuple[str, dict, list[dict]]] = {
    "/operators/{operator_id}/status": (MANAGER, {}, [{"status": "BREAK", "reason": "lunch"}]),
    "/driver/v1/deptrans-status/v1/id": (DRIVER, DRIVER_HEADERS, [{"deptrans_id": "KRT12345"}]),
    "/api/v1/chat/chats": (ADMIN, {}, [{"text": "hi", "queue": "general", "priority": 1, "client_id": "c1",
                                        "chat_id": "fuzz-chat"}]),
    "/api/v1/chat/admin/transfer-chat": (ADMIN, {}, [{"chat_id": "fuzz-chat", "target_operator_id": "op1",
                                                      "reason": "r"}]),
    "/api/v1/chat/admin/assign-lawyer": (ADMIN, {}, [{"chat_id": "fuzz-chat", "lawyer_id": "law1", "client_id": "c1"}]),
    "/api/v1/chat/admin/update-operator-status": (ADMIN, {}, [{"operator_id": "op1", "status": "online",
                                                               "capacity": 3, "lawyer": False}]),
    "/api/v1/chat/admin/close-chat": (ADMIN, {}, [{"chat_id": "fuzz-other", "reason": "r"}]),
    "/api/v1/chat/admin/update-queue-priority": (ADMIN, {}, [{"chat_id": "fuzz-chat", "priority": 2}]),
    "/tel/inbound_number": (SERVICE, {}, [
        {"order_id": "o-fz", "inbound_number": "+74951234567", "gateway": "gw-1", "ttl_s": 600},
        {"order_id": "o-fz", "inbound_number": "+74951234567", "expires_at": int(time.time()) + 3600}]),
    "/routetoivr": (SERVICE, {}, [{"phone": "+79161234567", "order_id": "o-fz", "order_time_s": 600},
                                  {"phone": "+79161234567", "order_id": "o-fz", "ttl_s": 600}]),
    "/routetooperator": (SERVICE, {}, [{"phone": "+79161234567", "order_id": "o-fz"}]),
}
# JSON texts, as sent: booleans for numbers, numbers past every range, non-finite (Python's json
# writes NaN/Infinity; 1e999 parses as infinity), wrong types, huge strings, nesting
BAD = ["true", "false", "null", "0", "-1", "1.5", "1e300", "-1e300", "1e999", "NaN", "Infinity", "-Infinity",
       str(2 ** 70), str(-(2 ** 70)), str(2 ** 64), '""', '" "', '"\u0000"', '"x"', '"' + "9" * 10_000 + '"',
       '"' + "x" * 100_000 + '"', "[]", "{}", '["a"]', '{"a": 1}', "[" * 50 + "]" * 50, '"🙂"', '"1e999"']


def _bodies(good: dict):
    for field in good:
        for bad in BAD:
            parts = [f"{json.dumps(name)}: {bad if name == field else json.dumps(value)}" for name, value in good.items()]
            yield field, bad, ("{" + ", ".join(parts) + "}").encode()
    yield "(extra)", "unknown field", json.dumps({**good, "unexpected": 1}).encode()


def test_every_field_of_every_post_body_with_every_bad_value_is_an_answer_never_a_500(surface, worker):
    """Issue 24: IVR answered 500 for huge or non-finite numbers and 10 kB phones; booleans passed
    as numbers. Every POST route the app registers must be in POST_BODIES (a new one joins by
    itself); each answer is a 4xx in the error shape naming the field, or a 2xx for a value that
    is in fact good; never a 5xx (a 503 `unavailable` for a driver ID check with KRT off is the
    one exception, and only for values that passed the edge)."""
    posts = {route for method, route in surface["routes"] if method == "POST"}
    assert posts == set(POST_BODIES), f"POST routes without bodies to fuzz: {posts - set(POST_BODIES)}"
    wrong, refused = [], 0
    for route, (token, headers, goods) in POST_BODIES.items():
        path = route.replace("{operator_id}", quote("SIP/7001", safe=""))
        for good in goods:
            for field, bad, raw in _bodies(good):
                status, payload, _ = send(worker.url, "POST", path, {}, token, raw, headers)
                where = f"{route} {field}={bad[:40]} -> {status} {payload[:160]!r}"
                if status >= 500 and not (status == 503 and route.startswith("/driver/")):
                    wrong.append(where)
                    continue
                if status >= 400:
                    refused += 1
                    error = orjson.loads(payload)["error"]
                    if not (error["code"] and error["message"]):
                        wrong.append(where)
                    elif status == 400 and field != "(extra)" and field not in error["message"] and not (
                            bad.startswith(("NaN", "Infinity", "-Infinity", "1e999", "[[")) or "JSON" in error["message"]):
                        wrong.append(where + " (the message does not name the field)")
                elif bad in ("true", "false") and isinstance(good[field], (int, float)) and not isinstance(
                        good[field], bool):
                    wrong.append(where + " (a boolean taken for a number)")
    assert wrong == [], "\n".join(wrong[:40])
    assert refused > 500  # most of them are bad indeed
    assert http_get(worker.url + "/health", timeout=2)[0] == 200
