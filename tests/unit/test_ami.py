"""The AMI client against the AMI double, over real localhost sockets (no Kafka, no Asterisk).

What the operator-status sync relies on: QueuePause and QueueStatus as Asterisk speaks them,
answers matched by ActionID, every failure an AmiError raised quickly (never a hang), a
client that reconnects by itself, and each outcome counted in /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import signal
import subprocess
import sys
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

import aiohttp
import pytest

from app.ami import (
    AmiClient,
    AmiRefused,
    AmiSettings,
    AmiTimeout,
    AmiUnavailable,
    Backoff,
    QueueMember,
    encode_message,
    parse_url,
    read_message,
)
from app.metrics import REGISTRY
from dev.ami_double import BANNER, AmiDouble
from tests.harness import ROOT

QUICK = Backoff(initial_s=0.02, max_s=0.1)


def scenario(test: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async test in its own loop, with a deadline well inside the file's budget."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(asyncio.wait_for(test(*args, **kwargs), 10))
    return run


async def eventually(predicate: Callable[[], bool], timeout_s: float = 3.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def calls(outcome: str) -> float:
    return REGISTRY.get_sample_value("switchboard_external_calls_total", {"system": "ami", "outcome": outcome}) or 0.0


def connected_gauge() -> Optional[float]:
    return REGISTRY.get_sample_value("switchboard_ami_connected")


@contextlib.asynccontextmanager
async def ami(double: Optional[AmiDouble] = None, secret: str = "switchboard",
              **options: Any) -> AsyncIterator[tuple[AmiDouble, AmiClient]]:
    """A double on a free port and a client of it (logged in unless the secret is wrong)."""
    double = await (double or AmiDouble()).start()
    options = {"backoff": QUICK, "action_timeout_s": 1.0, "connect_timeout_s": 1.0, **options}
    client = AmiClient(AmiSettings("127.0.0.1", double.port, "switchboard", secret), **options)
    await client.start()
    try:
        if secret == double.secret:
            assert await client.wait_connected(3.0), "the client did not log in"
        yield double, client
    finally:
        await client.stop()
        await double.stop()


# --- connection and login -----------------------------------------------------------------------

@scenario
async def test_the_client_logs_in_and_logs_off_when_stopped():
    async with ami() as (double, client):
        assert client.connected and connected_gauge() == 1.0
        [login] = double.received("Login")
        assert login.fields == {"Username": "switchboard", "Secret": "switchboard"} and login.action_id
        assert (await client.action("Ping"))["Ping"] == "Pong"
    assert not client.connected and connected_gauge() == 0.0
    assert [a.name for a in double.actions] == ["Login", "Ping", "Logoff"]


@scenario
async def test_a_wrong_secret_is_retried_with_backoff_and_warned_about_once(caplog):
    caplog.set_level(logging.DEBUG, logger="app.ami")
    attempts: list[float] = []

    async def counted(host: str, port: int) -> Any:  # the transport is a function: count the connections
        attempts.append(time.monotonic())
        return await asyncio.open_connection(host, port)

    async with ami(secret="wrong", open_connection=counted) as (double, client):
        await eventually(lambda: len(double.received("Login")) >= 4, what="four logins")
        assert not client.connected and connected_gauge() == 0.0
        unavailable = calls("unavailable")
        with pytest.raises(AmiUnavailable):
            await client.queue_pause("SIP/1001", True)
        assert calls("unavailable") == unavailable + 1
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert all(gap >= 0.015 for gap in gaps), gaps  # backed off, not hammering
    warnings = [r for r in caplog.records if r.name == "app.ami" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "authentication failed for user 'switchboard'" in warnings[0].getMessage()
    assert "wrong" not in caplog.text  # the secret is never logged


@scenario
async def test_actions_before_login_are_denied_by_the_double_as_by_asterisk():
    double = await AmiDouble().start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", double.port)
        assert await reader.readline() == f"{BANNER}\r\n".encode()
        writer.write(encode_message({"Action": "QueueStatus", "ActionID": "a1"}))
        assert await read_message(reader) == {"Response": "Error", "ActionID": "a1", "Message": "Permission denied"}
        writer.write(encode_message({"Action": "Login", "ActionID": "a2", "Username": "switchboard", "Secret": "x"}))
        assert (await read_message(reader) or {})["Message"] == "Authentication failed"
        assert await read_message(reader) is None  # and it hangs up
        writer.close()
    finally:
        await double.stop()


# --- QueuePause and QueueStatus -----------------------------------------------------------------

@pytest.mark.parametrize("paused, queue, reason, sent", [
    (True, "support", "BREAK", {"Interface": "SIP/1001", "Paused": "true", "Queue": "support", "Reason": "BREAK"}),
    (False, None, None, {"Interface": "SIP/1001", "Paused": "false"}),
], ids=["pause-in-one-queue-with-reason", "unpause-everywhere"])
@scenario
async def test_queue_pause_sends_what_asterisk_expects(paused, queue, reason, sent):
    double = AmiDouble()
    double.set_member("support", "SIP/1001", paused=not paused, reason="" if paused else "offline")
    double.set_member("sales", "SIP/1001", paused=not paused)
    ok = calls("ok")
    async with ami(double) as (double, client):
        answer = await client.queue_pause("SIP/1001", paused, queue=queue, reason=reason)
        assert answer["Message"] == f"Interface {'paused' if paused else 'unpaused'} successfully"
        [pause] = double.received("QueuePause")
        assert pause.fields == sent
    assert calls("ok") == ok + 1
    assert double.queues["support"]["SIP/1001"].paused is paused
    assert double.queues["support"]["SIP/1001"].reason == (reason or "")
    assert double.queues["sales"]["SIP/1001"].paused is (paused if queue is None else not paused)


@scenario
async def test_pausing_an_interface_no_queue_has_is_refused():
    double = AmiDouble()
    double.set_member("support", "SIP/1001")
    refused = calls("refused")
    async with ami(double) as (double, client):
        with pytest.raises(AmiRefused) as raised:
            await client.queue_pause("SIP/1002", True, reason="BREAK")
        assert raised.value.message == "Interface not found"
        with pytest.raises(AmiRefused, match="Interface not found"):
            await client.queue_pause("SIP/1001", True, queue="sales")
        assert client.connected  # a refusal is an answer, not a lost connection
    assert calls("refused") == refused + 2


@scenario
async def test_a_lenient_double_adds_an_unknown_interface_on_its_first_pause():
    async with ami(AmiDouble(lenient=True)) as (double, client):
        await client.queue_pause("SIP/1009", True, reason="offline")
        await client.queue_pause("SIP/1010", False, queue="support")
    assert [(m.queue, m.interface, m.paused, m.reason) for m in double.members()] == [
        ("default", "SIP/1009", True, "offline"), ("support", "SIP/1010", False, "")]


@scenario
async def test_queue_status_lists_the_members_of_every_queue_or_of_one():
    double = AmiDouble()
    double.set_member("support", "SIP/1001", paused=True, reason="BREAK", name="Anna")
    double.set_member("support", "PJSIP/1002")
    double.set_member("sales", "SIP/1001")
    double.queues["support"]["PJSIP/1002"].in_call = True
    async with ami(double) as (double, client):
        everyone = await client.queue_status()
        support = await client.queue_status("support")
        nobody = await client.queue_status("no-such-queue")
        listed = await client.action_list("QueueStatus", Queue="sales")
    assert everyone == [
        QueueMember("sales", "SIP/1001", "SIP/1001", paused=False, paused_reason="", in_call=False,
                    state_interface="SIP/1001"),
        QueueMember("support", "PJSIP/1002", "PJSIP/1002", paused=False, paused_reason="", in_call=True,
                    state_interface="PJSIP/1002"),
        QueueMember("support", "SIP/1001", "Anna", paused=True, paused_reason="BREAK", in_call=False,
                    state_interface="SIP/1001"),
    ]
    assert support == everyone[1:] and nobody == []
    assert [e["Event"] for e in listed] == ["QueueParams", "QueueMember"]  # the list, without its Complete


# --- concurrency, timeouts, lost connections ----------------------------------------------------

@scenario
async def test_concurrent_actions_get_their_own_answers_by_action_id():
    double = AmiDouble()
    double.set_member("support", "SIP/1001")
    double.delay("Ping", 0.3)  # the first sent is answered last
    async with ami(double) as (double, client):
        answered: list[str] = []

        async def tracked(name: str, action: Awaitable[Any]) -> Any:
            result = await action
            answered.append(name)
            return result

        ping, pause, status, refused = await asyncio.gather(
            tracked("ping", client.action("Ping")),
            tracked("pause", client.queue_pause("SIP/1001", True, reason="BREAK")),
            tracked("status", client.queue_status()),
            tracked("refused", client.queue_pause("SIP/9999", True)),
            return_exceptions=True,
        )
    assert answered[-1] == "ping"
    assert ping["Ping"] == "Pong" and pause["Message"] == "Interface paused successfully"
    assert status == [QueueMember("support", "SIP/1001", "SIP/1001", paused=True, paused_reason="BREAK", in_call=False,
                                  state_interface="SIP/1001")]
    assert isinstance(refused, AmiRefused)
    sent_ids = [a.action_id for a in double.actions]
    assert None not in sent_ids and len(set(sent_ids)) == len(sent_ids)


@scenario
async def test_an_answer_later_than_the_action_timeout_raises_and_the_client_carries_on():
    double = AmiDouble()
    double.set_member("support", "SIP/1001")
    double.delay("QueuePause", 0.5)
    timeouts = calls("timeout")
    async with ami(double, action_timeout_s=0.2) as (double, client):
        started = time.monotonic()
        with pytest.raises(AmiTimeout):
            await client.queue_pause("SIP/1001", True)
        assert time.monotonic() - started < 0.45
        double.delay("QueuePause", 0)
        await asyncio.sleep(0.4)  # the late answer arrives and is dropped
        assert (await client.queue_pause("SIP/1001", False))["Message"] == "Interface unpaused successfully"
        assert client.connected
    assert calls("timeout") == timeouts + 1


@scenario
async def test_a_lost_connection_fails_pending_actions_at_once_and_the_client_reconnects():
    double = AmiDouble()
    double.delay("Ping", 5.0)
    async with ami(double, action_timeout_s=3.0) as (double, client):
        pending = asyncio.ensure_future(client.action("Ping"))
        await eventually(lambda: bool(double.received("Ping")), what="the Ping to arrive")
        started = time.monotonic()
        double.disconnect_all()
        with pytest.raises(AmiUnavailable):
            await pending
        assert time.monotonic() - started < 0.5  # not at the action timeout
        double.delay("Ping", 0)
        assert await client.wait_connected(3.0)
        assert (await client.action("Ping"))["Ping"] == "Pong"
        assert len(double.received("Login")) == 2


@scenario
async def test_while_ami_is_down_actions_fail_fast_and_the_client_comes_back_when_it_is_up(caplog):
    caplog.set_level(logging.DEBUG, logger="app.ami")
    async with ami() as (double, client):
        double.refuse_connections(True)
        await eventually(lambda: not client.connected, what="the client to see AMI down")
        assert connected_gauge() == 0.0
        await asyncio.sleep(0.3)  # several reconnects fail meanwhile
        with pytest.raises(AmiUnavailable):
            await client.action("Ping")
        double.refuse_connections(False)
        assert await client.wait_connected(3.0)
        assert connected_gauge() == 1.0
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.ami" and r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2, warnings  # the loss (and the first failed reconnect), not every retry


@scenario
async def test_a_server_that_is_no_ami_is_not_logged_in_to():
    async def greets_like_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(greets_like_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AmiClient(f"ami://switchboard:switchboard@127.0.0.1:{port}", backoff=QUICK)
    await client.start()
    try:
        assert not await client.wait_connected(0.2)
        with pytest.raises(AmiUnavailable):
            await client.action("Ping")
    finally:
        await client.stop()
        server.close()


# --- events ---------------------------------------------------------------------------------------

@scenario
async def test_unsolicited_events_reach_on_event_and_a_failing_handler_breaks_nothing():
    seen: list[dict[str, str]] = []

    def on_event(event: dict[str, str]) -> None:
        seen.append(event)
        if event["Event"] == "PeerStatus":
            raise RuntimeError("a bug in the handler")

    double = AmiDouble()
    double.set_member("support", "SIP/1001")
    async with ami(double, on_event=on_event) as (double, client):
        double.emit({"Event": "PeerStatus", "Peer": "SIP/1001", "PeerStatus": "Unregistered"})
        double.emit({"Event": "ContactStatus", "AOR": "1002", "ContactStatus": "Removed"})
        await client.queue_pause("SIP/1001", True, reason="offline")
        await eventually(lambda: len(seen) >= 4, what="four events")
        assert client.connected
    assert [e["Event"] for e in seen] == ["FullyBooted", "PeerStatus", "ContactStatus", "QueueMemberPause"]
    assert seen[1] == {"Event": "PeerStatus", "Peer": "SIP/1001", "PeerStatus": "Unregistered"}
    pause = seen[3]
    assert (pause["Queue"], pause["Interface"], pause["Paused"], pause["PausedReason"]) == ("support", "SIP/1001", "1", "offline")


# --- the pure parts ------------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("ami://switchboard:s3cret@pbx.local", AmiSettings("pbx.local", 5038, "switchboard", "s3cret")),
    ("ami://u:p@127.0.0.1:15038", AmiSettings("127.0.0.1", 15038, "u", "p")),
    ("ami://u:p%40ss%3Aw@pbx:5038/", AmiSettings("pbx", 5038, "u", "p@ss:w")),
], ids=["default-port", "explicit-port", "percent-encoded-secret"])
def test_parse_url(url, expected):
    assert parse_url(url) == expected


@pytest.mark.parametrize("url, problem", [
    ("http://u:p@pbx:5038", "scheme"),
    ("ami://u@pbx:5038", "no secret"),
    ("ami://pbx:5038", "no user"),
    ("ami://u:p@:5038", "no host"),
    ("ami://u:p@pbx:notaport", "bad AMI URL"),
    ("ami://u:p@pbx:70000", "bad AMI URL"),
    ("ami://u:p@pbx:5038/queues", "nothing may follow"),
], ids=["wrong-scheme", "no-secret", "no-user", "no-host", "port-not-a-number", "port-out-of-range", "a-path"])
def test_parse_url_says_what_is_wrong_and_never_shows_the_secret(url, problem):
    with pytest.raises(ValueError, match=problem) as raised:
        parse_url(url)
    assert ":p@" not in str(raised.value)


def test_settings_never_show_the_secret():
    assert "s3cret" not in repr(parse_url("ami://u:s3cret@pbx"))


def test_backoff_doubles_up_to_its_cap_with_jitter_around_it():
    backoff = Backoff(initial_s=0.5, max_s=30.0, jitter=0.2)
    assert [backoff.delay(n, rng=lambda: 0.5) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.delay(0, rng=lambda: 0.0) == pytest.approx(0.4)
    assert backoff.delay(10, rng=lambda: 1.0) == pytest.approx(36.0)


def test_a_field_with_a_line_break_is_refused_rather_than_forging_another_field():
    assert encode_message({"Action": "Ping", "ActionID": "1"}) == b"Action: Ping\r\nActionID: 1\r\n\r\n"
    with pytest.raises(ValueError):
        encode_message({"Action": "QueuePause", "Reason": "x\r\nAction: Logoff"})


# --- the double as a process, driven over HTTP ---------------------------------------------------

@scenario
async def test_the_double_as_a_process_with_its_http_control():
    process = subprocess.Popen(
        [sys.executable, "-m", "dev.ami_double", "--port", "0", "--control-port", "0", "--username", "crm",
         "--secret", "pw", "--members", "support:SIP/1001,support:SIP/1002"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 5)  # type: ignore[union-attr]
        found = re.search(r"listening on 127\.0\.0\.1:(\d+).*http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        ami_port, control = int(found[1]), f"http://127.0.0.1:{found[2]}"
        events: list[dict[str, str]] = []
        client = AmiClient(f"ami://crm:pw@127.0.0.1:{ami_port}", backoff=QUICK, action_timeout_s=1.0, on_event=events.append)
        await client.start()
        async with aiohttp.ClientSession() as http:
            async def call(method: str, path: str, body: Any = None) -> Any:
                async with http.request(method, control + path, json=body) as response:
                    return response.status, await response.json()

            assert await client.wait_connected(3.0)
            await client.queue_pause("SIP/1001", True, queue="support", reason="BREAK")
            status, actions = await call("GET", "/actions")
            assert [a["action"] for a in actions] == ["Login", "QueuePause"] and actions[1]["action_id"]
            assert actions[1]["fields"] == {"Interface": "SIP/1001", "Paused": "true", "Queue": "support", "Reason": "BREAK"}
            assert (await call("DELETE", "/actions"))[0] == 200 and (await call("GET", "/actions"))[1] == []

            assert (await call("POST", "/members", {"queue": "sales", "interface": "SIP/1003", "paused": True,
                                                    "reason": "offline"}))[0] == 200
            assert (await call("DELETE", "/members", {"queue": "support", "interface": "SIP/1002"}))[0] == 200
            _, members = await call("GET", "/members")
            assert [(m["queue"], m["interface"], m["paused"], m["reason"]) for m in members] == [
                ("sales", "SIP/1003", True, "offline"), ("support", "SIP/1001", True, "BREAK")]
            assert [m.interface for m in await client.queue_status()] == ["SIP/1003", "SIP/1001"]

            await call("POST", "/fail", {"action": "QueuePause", "count": 1, "message": "Boom"})
            with pytest.raises(AmiRefused, match="Boom"):
                await client.queue_pause("SIP/1001", False)
            await client.queue_pause("SIP/1001", False)  # only the next one failed

            await call("POST", "/delay", {"action": "Ping", "seconds": 2})
            with pytest.raises(AmiTimeout):
                await client.action("Ping")
            await call("POST", "/delay", {"action": "Ping", "seconds": 0})

            await call("POST", "/events", {"Event": "PeerStatus", "Peer": "SIP/1001", "PeerStatus": "Unregistered"})
            await eventually(lambda: any(e["Event"] == "PeerStatus" for e in events), what="the PeerStatus event")

            await call("POST", "/down", {"down": True})
            await eventually(lambda: not client.connected, what="AMI down")
            await call("POST", "/down", {"down": False})
            assert await client.wait_connected(3.0)
            await call("POST", "/disconnect")
            await eventually(lambda: not client.connected, what="the disconnect")
            assert await client.wait_connected(3.0)

            status, error = await call("POST", "/fail", {"count": 1})
            assert status == 400 and error["error"]["code"] == "bad_request" and "action" in error["error"]["message"]
        await client.stop()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 5) == 0
