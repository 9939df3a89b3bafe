"""The edges: query validation (web/params.py), dead letters that fit (app/deadletters.py),
envelopes that fit (app/batching.py), the error shape of aiohttp's own errors (web/errors.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tables.callcenter.store  # noqa: F401  (registers the call center's message types)
from app.batching import MAX_ENVELOPE_BYTES, envelopes_of
from app.codec import unpack
from app.deadletters import DEAD_LETTER_PREFIX_BYTES, dead_letter_body, dead_letter_key
from tables.callcenter.events import CallEntered
from web.errors import ApiError, _handle_error_as_json, error_shape
from web.params import EPOCH_MAX, EPOCH_MIN, MAX_RANGE_S, TimeRange, identifier, query

NOW = 1_795_342_520.0


def ask(**params) -> TimeRange:
    return query(SimpleNamespace(query=params), TimeRange, {"since": NOW - 3600, "until": NOW})


def test_a_good_range_and_the_defaults() -> None:
    assert ask() == TimeRange(since=NOW - 3600, until=NOW)
    assert ask(since=str(NOW - 60), until="") == TimeRange(since=NOW - 60, until=NOW)


@pytest.mark.parametrize("params, named", [
    ({"since": "1795342520000000000", "until": "1795342520000000000"}, "since"),  # nanoseconds
    ({"since": "NaN"}, "since"), ({"until": "nan"}, "until"), ({"since": "1e309", "until": "1e309"}, "since"),
    ({"since": "-inf"}, "since"), ({"since": "yesterday"}, "since"), ({"until": "0x10"}, "until"),
    ({"since": str(NOW), "until": str(NOW - 1)}, "since"),
    ({"since": str(NOW - MAX_RANGE_S - 1), "until": str(NOW)}, "31 days"),
])
def test_bad_times_are_400_naming_the_parameter(params, named) -> None:
    with pytest.raises(ApiError) as caught:
        ask(**params)
    assert caught.value.status == 400 and caught.value.code == "bad_request" and named in caught.value.message


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30), st.text(max_size=30)))
def test_any_since_is_either_a_sane_epoch_or_a_400(value) -> None:
    try:
        got = ask(since=str(value), until=str(EPOCH_MAX))
    except ApiError as exc:
        assert exc.status == 400
    else:
        assert math.isfinite(got.since) and EPOCH_MIN <= got.since <= EPOCH_MAX


@pytest.mark.parametrize("value", ["", "x" * 257, "a\x00b", "tab\there"])
def test_bad_path_ids_are_400(value) -> None:
    with pytest.raises(ApiError) as caught:
        identifier(value, "queue")
    assert caught.value.status == 400 and "queue" in caught.value.message


def test_a_good_path_id_passes() -> None:
    assert identifier("support/line 2 — очередь", "queue") == "support/line 2 — очередь"


def message(value, key=b"k") -> SimpleNamespace:
    return SimpleNamespace(topic="qapp-events", partition=2, offset=41, timestamp=NOW, key=key, value=value)


def test_a_null_value_has_no_value_in_its_dead_letter() -> None:
    letter = orjson.loads(dead_letter_body(message(None), "empty value"))
    assert letter["value"] is None and letter["value_b64"] is None and letter["value_size"] is None
    assert (letter["partition"], letter["offset"], letter["reason"]) == (2, 41, "empty value")


def test_a_huge_value_gets_a_bounded_dead_letter_with_its_size_and_digest() -> None:
    value = b"1700000000|c|q|NONE|ENTERQUEUE|" + "я".encode() * 600_000
    letter = orjson.loads(dead_letter_body(message(value, key=b"K" * 50_000), "oversized record"))
    assert letter["value_size"] == len(value) and letter["value_truncated"] is True
    assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert base64.b64decode(letter["value_b64"]) == value[:DEAD_LETTER_PREFIX_BYTES]
    assert letter["value"] is not None and value.decode().startswith(letter["value"])  # cut at a character
    assert len(dead_letter_body(message(value), "x")) < 4 * DEAD_LETTER_PREFIX_BYTES
    assert len(dead_letter_key(message(value, key=b"K" * 50_000))) == 1024


def test_a_record_that_resists_description_still_gets_a_letter() -> None:
    class Hostile:
        def __str__(self):
            raise RuntimeError("no")

    letter = orjson.loads(dead_letter_body(message(Hostile()), "weird"))
    assert letter["reason"] == "weird" and letter["offset"] == 41 and "incomplete" in letter["note"]


def test_binary_values_keep_their_bytes_and_have_no_text() -> None:
    letter = orjson.loads(dead_letter_body(message(b"\xff\xfe\x00"), "line is not UTF-8"))
    assert letter["value"] is None and base64.b64decode(letter["value_b64"]) == b"\xff\xfe\x00"
    assert letter["value_truncated"] is False


def test_envelopes_stay_under_the_limit_and_keep_the_order() -> None:
    messages = [CallEntered(NOW + k, f"c-{k}-" + "x" * 3000, "q", "+7", 1) for k in range(1000)]
    values = envelopes_of(messages)
    assert len(values) > 1 and all(len(v) <= MAX_ENVELOPE_BYTES for v in values)
    assert [m for v in values for m in unpack(v)] == messages
    assert envelopes_of(messages[:3]) == envelopes_of(messages[:3])[:1]  # small: one envelope


class FakeRequest:
    def __init__(self) -> None:
        self.remote = "127.0.0.1"
        self.headers = {}
        self.writer = SimpleNamespace(output_size=0)


def test_parse_errors_are_answered_in_the_error_shape(caplog) -> None:
    traced = []
    handler = SimpleNamespace(_request_count=2, debug=False, log_exception=lambda *a, **k: traced.append(a),
                              logger=SimpleNamespace(debug=lambda *a, **k: None))
    with caplog.at_level("INFO", logger="web.errors"):
        response = _handle_error_as_json(handler, FakeRequest(), 400, ValueError("bad line"), "Bad Request")
    assert response.status == 400 and response.content_type == "application/json"
    assert orjson.loads(response.body)["error"]["code"] == "bad_request"
    # the client's doing: one warning line, no traceback (aiohttp's own log is an error with one)
    assert traced == [] and [(r.levelname, r.exc_info) for r in caplog.records] == [("WARNING", None)]
    assert "bad line" in caplog.records[0].error
    response = _handle_error_as_json(handler, FakeRequest(), 500, RuntimeError("boom"))
    body = orjson.loads(response.body)
    assert response.status == 500 and body["error"]["code"] == "internal" and "boom" not in response.body.decode()


def test_the_middleware_shapes_aiohttp_errors_and_hides_tracebacks() -> None:
    from aiohttp import web as aioweb
    from aiohttp.test_utils import make_mocked_request

    async def not_found(request):
        raise aioweb.HTTPNotFound()

    async def not_allowed(request):
        raise aioweb.HTTPMethodNotAllowed("POST", ["GET"])

    async def broken(request):
        raise RuntimeError("secret detail")

    async def run():
        out = []
        for handler in (not_found, not_allowed, broken):
            out.append(await error_shape(make_mocked_request("POST", "/x"), handler))
        return out

    found, allowed, crashed = asyncio.new_event_loop().run_until_complete(run())
    assert (found.status, orjson.loads(found.body)["error"]["code"]) == (404, "not_found")
    assert (allowed.status, orjson.loads(allowed.body)["error"]["code"]) == (405, "method_not_allowed")
    assert allowed.headers["Allow"] == "GET"
    assert crashed.status == 500 and b"secret" not in crashed.body


@pytest.mark.parametrize("raw", [
    b"[]", b"{}", b"null", b"1", b'"x"', b"[1, 2]", b'[["Nope", {}]]', b'[["CallEntered", {}]]',
    b'[["CallEntered", {"time": "soon", "callid": "c", "queue": "q", "callerid": "", "position": 1}]]',
    b'[["CallEntered", {"time": 1.0, "callid": 7, "queue": "q", "callerid": "", "position": 1}]]',
    b'[["CallEntered", {"time": 1.0, "callid": "c", "queue": "q", "callerid": "", "position": 1, "extra": 1}]]',
    b'[["CallEntered", {"time": true, "callid": "c", "queue": "q", "callerid": "", "position": null}]]',
    b'[["StreamMark", {"source": 0, "via": -1, "time": 1e999}]]', b'[["StreamMark", {"source": 0.5, "via": -1, "time": 1}]]',
])
def test_hand_written_envelopes_are_refused_not_crashed_on(raw) -> None:
    from app.codec import UndecodableMessage

    with pytest.raises(UndecodableMessage):
        unpack(raw)


def test_optional_fields_and_ints_for_floats_pass() -> None:
    got = unpack(b'[["CallEntered", {"time": 17, "callid": "c", "queue": "q", "callerid": "", "position": null}]]')
    assert got == [CallEntered(17, "c", "q", "", None)]
