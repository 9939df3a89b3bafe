"""IVR routing on the real broker, through two real workers: each endpoint, each edge case
of seed 001, expiry by TTL (short TTLs and sweeps: seconds, not minutes), the compacted
`ivr-routing-rules` topic, bad input on HTTP and on `ivr-commands`."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from urllib.parse import quote

import orjson
import pytest

from tests.harness import MANAGER, SERVICE, consume_all, http_get, http_request, produce, wait_until

pytestmark = pytest.mark.integration
WORKER_ENV = {
    "IVR_MARGIN_S": 2, "IVR_RULE_SWEEP_S": 0.2, "IVR_BINDING_SWEEP_S": 0.2, "TICK_INTERVAL_S": 0.2,
    "SOURCE_QUIET_S": 0.2, "IVR_DEFAULT_CALLER_NUMBER": "+74950001122", "IVR_DEFAULT_GATEWAY": "gw-default",
}


def post(worker, path, body, token=SERVICE):
    return http_request("POST", worker.url + path, body, token)


def routing(worker, phone):
    status, body = http_get(f"{worker.url}/routing?phone={quote(phone, safe='')}", SERVICE)
    assert status == 200, body
    return body


def make_call(worker, order_id):
    status, body = http_get(f"{worker.url}/make_call?order_id={order_id}", SERVICE)
    assert status == 200, body
    return body


def eventually(predicate, what, timeout=20.0):
    return wait_until(predicate, timeout, 0.05, what)


def rules_on_topic(deployment) -> dict:
    """The latest record per phone on ivr-routing-rules (None: a tombstone)."""
    latest = {}
    for key, value in consume_all(deployment.broker.bootstrap, deployment.topic("ivr-routing-rules"), idle_s=1.0):
        latest[key.decode()] = None if value is None else orjson.loads(value)
    return latest


def test_route_to_ivr_then_to_operator_as_the_seed_tells_it(deployment, workers):
    first, second = workers
    phone = "+79161110001"
    # a call before the rule exists goes to an operator
    assert routing(first, phone) == {"target": "operator", "order_id": None, "expires_at": None, "reason": "no_rule"}

    status, body = post(first, "/routetoivr", {"phone": "8 (916) 111-00-01", "order_id": "order-1", "order_time_s": 600})
    assert status == 200, body
    assert (body["phone"], body["target"], body["order_id"]) == (phone, "ivr", "order-1")
    assert body["expires_at"] == pytest.approx(time.time() + 602, abs=5)  # order time + IVR_MARGIN_S

    # any worker answers, the number in any form
    for worker, asked in ((first, phone), (second, "89161110001"), (second, "+7 916 111-00-01")):
        answer = eventually(lambda: (a := routing(worker, asked))["target"] == "ivr" and a, "the rule")
        assert (answer["order_id"], answer["reason"]) == ("order-1", "active_order")
        assert answer["expires_at"] == pytest.approx(body["expires_at"])
    assert eventually(lambda: (r := rules_on_topic(deployment)).get(phone) and r, "the rule on the topic")[phone] == {
        "phone": phone, "target": "ivr", "order_id": "order-1", "expires_at": body["expires_at"],
        "orders": [{"order_id": "order-1", "expires_at": body["expires_at"]}]}

    # the order finishes: an operator again; a call the telephony still sends to the IVR is
    # told the order finished
    status, body = post(second, "/routetooperator", {"phone": phone, "order_id": "order-1"})
    assert (status, body) == (200, {"phone": phone, "target": "operator", "order_id": "order-1"})
    answer = eventually(lambda: (a := routing(first, phone))["target"] == "operator" and a, "the removal")
    assert answer == {"target": "operator", "order_id": "order-1", "expires_at": None, "reason": "order_finished"}
    eventually(lambda: phone in (r := rules_on_topic(deployment)) and r[phone] is None, "the tombstone")


def test_several_orders_of_one_passenger_keep_the_latest_expiry(workers):
    worker = workers[0]
    phone = "+79161110002"
    _, long = post(worker, "/routetoivr", {"phone": phone, "order_id": "order-long", "ttl_s": 3600})
    _, short = post(worker, "/routetoivr", {"phone": phone, "order_id": "order-short", "ttl_s": 600})
    answer = eventually(lambda: (a := routing(worker, phone))["target"] == "ivr" and a, "the rule")
    assert (answer["order_id"], answer["expires_at"]) == ("order-long", pytest.approx(long["expires_at"]))
    post(worker, "/routetooperator", {"phone": phone, "order_id": "order-long"})
    answer = eventually(lambda: (a := routing(worker, phone))["order_id"] == "order-short" and a, "the other order")
    assert (answer["target"], answer["expires_at"]) == ("ivr", pytest.approx(short["expires_at"]))


def test_a_rule_that_could_not_be_removed_expires_by_its_ttl(deployment, workers):
    worker = workers[1]
    phone = "+79161110003"
    status, body = post(worker, "/routetoivr", {"phone": phone, "order_id": "order-ttl", "ttl_s": 2})
    assert status == 200
    eventually(lambda: routing(worker, phone)["target"] == "ivr", "the rule")
    eventually(lambda: rules_on_topic(deployment).get(phone) is not None, "the rule on the topic")
    time.sleep(max(0.0, body["expires_at"] - time.time()))
    answer = routing(worker, phone)  # at once: no sweep needed for the answer
    assert (answer["target"], answer["order_id"], answer["reason"]) == ("operator", "order-ttl", "rule_expired")
    eventually(lambda: rules_on_topic(deployment)[phone] is None, "the tombstone of the expired rule")
    eventually(lambda: routing(worker, phone)["reason"] == "no_rule", "the sweep to forget it")
    holds_expired = sum(float(line.split()[-1]) for w in workers for line in http_get(w.url + "/metrics")[1].splitlines()
                        if line.startswith("switchboard_ivr_holds_expired_total"))
    assert holds_expired >= 1


def test_a_call_back_comes_from_the_number_the_passenger_called(workers):
    first, second = workers
    status, body = post(first, "/tel/inbound_number",
                        {"order_id": "order-cb", "inbound_number": "8 495 123-45-67", "gateway": "gw-7", "ttl_s": 3600})
    assert (status, body["inbound_number"], body["gateway"]) == (200, "+74951234567", "gw-7")
    for worker in (first, second):
        answer = eventually(lambda: (a := make_call(worker, "order-cb"))["source"] == "binding" and a, "the binding")
        assert answer == {"caller_number": "+74951234567", "gateway": "gw-7", "source": "binding"}
    # no gateway saved: the default gateway, the order's number
    post(first, "/tel/inbound_number", {"order_id": "order-nogw", "inbound_number": "+74951234568"})
    answer = eventually(lambda: (a := make_call(second, "order-nogw"))["source"] == "binding" and a, "the binding")
    assert (answer["caller_number"], answer["gateway"]) == ("+74951234568", "gw-default")


def test_an_order_whose_number_was_not_saved_is_called_back_from_the_defaults(workers):
    assert make_call(workers[0], "order-never-bound") == {
        "caller_number": "+74950001122", "gateway": "gw-default", "source": "default", "reason": "no_binding"}


def test_expired_bindings_are_cleaned_up(workers):
    worker = workers[0]
    status, body = post(worker, "/tel/inbound_number", {"order_id": "order-old", "inbound_number": "+74951234569", "ttl_s": 1.5})
    assert status == 200
    eventually(lambda: make_call(worker, "order-old")["source"] == "binding", "the binding")
    eventually(lambda: make_call(worker, "order-old").get("reason") == "no_binding", "the clean-up", timeout=15)


@pytest.mark.parametrize("path, body, status, code, says", [
    ("/routetoivr", {"phone": "12", "order_id": "o"}, 400, "bad_request", "phone"),
    ("/routetoivr", {"phone": "+79161110009"}, 400, "bad_request", "order_id"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "ttl_s": 1, "order_time_s": 1}, 400, "bad_request", "not both"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "ttl_s": -1}, 400, "bad_request", "ttl_s"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "ttl_s": 10 ** 6}, 400, "bad_request", "IVR_MAX_TTL_S"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "colour": "red"}, 400, "bad_request", "colour"),
    ("/routetooperator", {"phone": "not a number"}, 400, "bad_request", "phone"),
    ("/tel/inbound_number", {"order_id": "o", "inbound_number": "+7"}, 400, "bad_request", "inbound_number"),
    ("/tel/inbound_number", {"order_id": "", "inbound_number": "+74951234567"}, 400, "bad_request", "order_id"),
    # the probe's twelve 500s and three booleans taken as numbers (issue 24)
    ("/routetoivr", {"phone": "7" * 10_000, "order_id": "o"}, 400, "bad_request", "phone"),
    ("/routetoivr", {"phone": "", "order_id": "o"}, 400, "bad_request", "phone"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "ttl_s": 1e300}, 400, "bad_request", "ttl_s"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "ttl_s": 2 ** 70}, 400, "bad_request", "ttl_s"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "order_time_s": 1e300}, 400, "bad_request", "order_time_s"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "order_time_s": 2 ** 70}, 400, "bad_request",
     "order_time_s"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "ttl_s": True}, 400, "bad_request", "ttl_s"),
    ("/routetoivr", {"phone": "+79161110009", "order_id": "o", "order_time_s": True}, 400, "bad_request",
     "order_time_s"),
    ("/routetooperator", {"phone": "7" * 10_000}, 400, "bad_request", "phone"),
    ("/routetooperator", {"phone": ""}, 400, "bad_request", "phone"),
    ("/tel/inbound_number", {"order_id": "o", "inbound_number": "7" * 10_000}, 400, "bad_request", "inbound_number"),
    ("/tel/inbound_number", {"order_id": "o", "inbound_number": ""}, 400, "bad_request", "inbound_number"),
    ("/tel/inbound_number", {"order_id": "o", "inbound_number": "+74951234567", "ttl_s": 1e300}, 400, "bad_request",
     "ttl_s"),
    ("/tel/inbound_number", {"order_id": "o", "inbound_number": "+74951234567", "ttl_s": 2 ** 70}, 400, "bad_request",
     "ttl_s"),
    ("/tel/inbound_number", {"order_id": "o", "inbound_number": "+74951234567", "expires_at": True}, 400,
     "bad_request", "expires_at"),
], ids=["bad-phone", "no-order", "two-expiries", "negative-ttl", "ttl-too-long", "unknown-field", "operator-bad-phone",
        "bad-inbound-number", "empty-order", "huge-phone", "empty-phone", "ttl-1e300", "ttl-2**70", "order-time-1e300",
        "order-time-2**70", "ttl-bool", "order-time-bool", "operator-huge-phone", "operator-empty-phone",
        "huge-inbound-number", "empty-inbound-number", "binding-ttl-1e300", "binding-ttl-2**70", "expires-at-bool"])
def test_bad_commands_get_a_clear_400(workers, path, body, status, code, says):
    got, answer = post(workers[0], path, body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert says in answer["error"]["message"]


def test_bad_reads_and_callers_get_clear_errors(workers):
    worker = workers[0]
    assert http_get(worker.url + "/routing?phone=abc", SERVICE)[0] == 400
    assert http_get(worker.url + "/routing", SERVICE)[1]["error"]["message"].startswith("query parameter 'phone'")
    assert http_get(worker.url + "/make_call", SERVICE)[0] == 400
    assert http_get(worker.url + "/routing?phone=%2B79161110001")[0] == 401
    assert http_get(worker.url + "/routing?phone=%2B79161110001", MANAGER)[0] == 403
    status, body = post(worker, "/routetoivr", [1, 2])
    assert (status, body["error"]["code"]) == (400, "bad_request")
    request = urllib.request.Request(worker.url + "/routetoivr", data=b"phone=1", method="POST",
                                     headers={"Authorization": f"Bearer {SERVICE}", "Content-Type": "text/plain"})
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("a text body was accepted")
    except urllib.error.HTTPError as err:
        assert err.code == 415 and orjson.loads(err.read())["error"]["code"] == "unsupported_media_type"


def test_a_malformed_command_on_the_topic_is_a_dead_letter_and_the_stream_goes_on(deployment, workers):
    now = time.time()
    phone = "+79161110010"
    good = {"kind": "route_to_ivr", "phone": "89161110010", "order_id": "order-after-bad", "expires_at": now + 600, "at": now}
    produce(deployment.broker.bootstrap, deployment.topic("ivr-commands"), [
        (phone.encode(), b"{not json"),
        (phone.encode(), orjson.dumps({"kind": "route_to_ivr", "phone": "0", "order_id": "x", "expires_at": now + 9, "at": now})),
        (phone.encode(), orjson.dumps(good)),
    ])
    eventually(lambda: routing(workers[0], phone)["order_id"] == "order-after-bad", "the good command after the bad")
    letters = [orjson.loads(v) for _, v in consume_all(deployment.broker.bootstrap, deployment.topic("dead-letters"), idle_s=1.0)]
    ours = [letter for letter in letters if letter["source_topic"] == deployment.topic("ivr-commands")]
    assert len(ours) == 2, ours
    assert ours[0]["reason"].startswith("not JSON") and "phone" in ours[1]["reason"]
