"""Support chat (seed 004) on the real broker, two real workers, real WebSocket clients:
every flow of the seed, the accept race, reassignment when an operator goes away,
reconnecting without losing messages, roles and limits, bad records on the inputs."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from tests.harness import MANAGER, consume_all, http_get, http_request, produce, wait_until
from tests.integration.chatclient import Socket, connect

pytestmark = pytest.mark.integration
WORKER_ENV = {
    "CHAT_OPERATOR_GRACE_S": 2, "CHAT_PRESENCE_INTERVAL_S": 0.5, "CHAT_PRESENCE_LEASE_S": 4, "CHAT_TICK_S": 0.2,
    "CHAT_AUTO_ASSIGN_QUEUES": "auto", "CHAT_RATE_PER_S": 10, "CHAT_RATE_BURST": 40, "CHAT_MAX_TEXT": 500,
}
API = "/api/v1/chat"
ADMIN = "test-admin-token"


def client(n: int) -> str:
    return f"test-client-{n}"


def op(n: int) -> str:
    return f"test-op-{n}"


def lawyer(n: int) -> str:
    return f"test-lawyer-{n}"


def consume_all_with_headers(deployment, public: str) -> list[tuple[bytes, tuple]]:
    async def read():
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(deployment.topic(public), bootstrap_servers=deployment.broker.bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
        await consumer.start()
        records: list[tuple[bytes, tuple]] = []
        try:
            while batch := await consumer.getmany(timeout_ms=1000):
                records += [(m.value, tuple(m.headers)) for msgs in batch.values() for m in msgs]
        finally:
            await consumer.stop()
        return records

    return asyncio.run(read())


def run(scenario):
    async def main():
        async with aiohttp.ClientSession() as session:
            await scenario(session)

    asyncio.run(main())


async def open_chat(worker, token: str, text: str | None = None, queue: str = "general", **extra) -> dict:
    body = {"queue": queue, **extra}
    if text is not None:
        body["text"] = text
    status, answer = await asyncio.to_thread(http_request, "POST", worker.url + API + "/chats", body, token)
    assert status == 201, answer
    return answer


async def admin(worker, action: str, body: dict, expect: int = 200) -> dict:
    status, answer = await asyncio.to_thread(http_request, "POST", f"{worker.url}{API}/admin/{action}", body, ADMIN)
    assert status == expect, answer
    return answer


async def go_online(socket: Socket, capacity: int | None = None) -> None:
    payload = {"status": "online", **({"capacity": capacity} if capacity else {})}
    rid = await socket.send("set_status", payload)
    await socket.next("operator_status", lambda f: f.get("request_id") == rid)


def test_a_client_chat_reaches_every_operator_one_accepts_and_they_talk_across_workers(workers, deployment):
    first, second = workers

    async def scenario(session):
        op1 = await connect(session, first.url, op(1))
        op2 = await connect(session, second.url, op(2))
        await go_online(op1)
        await go_online(op2)
        opened = await open_chat(first, client(1), "my driver is lost")
        chat_id = opened["chat_id"]
        assert opened["outcome"] == "chat_created" and opened["state"] == "queued"
        for socket in (op1, op2):  # every operator sees it, on every worker
            new = await socket.next("new_chat_available", lambda f: f["payload"]["chat_id"] == chat_id)
            assert new["payload"]["client_id"] == "c1"
        me = await connect(session, second.url, client(1), chat_id, since=0)
        first_message = await me.next("message")
        assert (first_message["payload"]["message"], first_message["payload"]["message_id"]) == ("my driver is lost", 1)

        rid = await op1.send("accept_chat", {"chat_id": chat_id, "client_id": "c1"})
        assigned = await op1.next("chat_assigned", lambda f: f["payload"]["chat_id"] == chat_id)
        assert assigned["request_id"] == rid and assigned["payload"]["role"] == "operator"
        taken = await op2.next("chat_taken", lambda f: f["payload"]["chat_id"] == chat_id)
        assert taken["payload"]["operator_id"] == "op1"  # the others stop seeing it
        told = await me.next("chat_assigned")
        assert told["payload"]["operator_id"] == "op1"

        await op1.send("message", {"chat_id": chat_id, "text": "Hello, I am Anna"})
        heard = await me.next("message", lambda f: f["payload"]["sender_role"] == "operator")
        assert heard["payload"]["message"] == "Hello, I am Anna" and heard["payload"]["message_id"] == 2
        assert heard["payload"]["timestamp"].endswith("Z") and heard["payload"]["sender_id"] == "op1"
        for n in range(5):
            await me.send("message", {"text": f"line {n}"})
        got = [(await op1.next("message", lambda f: f["payload"]["sender_role"] == "client"))["payload"]
               for _ in range(5)]
        assert [m["message"] for m in got] == [f"line {n}" for n in range(5)]  # in order
        assert [m["message_id"] for m in got] == [3, 4, 5, 6, 7]
        assert not [f for f in op2.of_type("message")]  # not theirs

        status, history = await asyncio.to_thread(http_get, f"{first.url}{API}/chats/{chat_id}/messages?after=5",
                                                  client(1))
        assert status == 200 and [m["message_id"] for m in history["messages"]] == [6, 7]

        # the edges gave the desk each command once, and wrote each to the seed's topic, marked
        work = await asyncio.to_thread(consume_all, deployment.broker.bootstrap, f"{deployment.name}-chat-work", 1.0)
        sent = [fields for _, value in work for name, fields in orjson.loads(value)
                if name == "MessageSent" and fields["chat_id"] == chat_id]
        assert len(sent) == 6
        records = await asyncio.to_thread(consume_all_with_headers, deployment, "chat_events")
        ours = [(orjson.loads(value), headers) for value, headers in records if orjson.loads(value)["chat_id"] == chat_id]
        assert [r["type"] for r, _ in ours] == ["chat_created", "message_sent", *["message_sent"] * 5]
        assert all(("switchboard-desk", deployment.name.encode()) in headers for _, headers in ours)

        await me.send("close_chat", {"reason": "thanks"})
        closed = await op1.next("chat_closed", lambda f: f["payload"]["chat_id"] == chat_id)
        assert closed["payload"]["reason"] == "thanks"
        status, stats = await asyncio.to_thread(http_get, f"{second.url}{API}/chats/stats", MANAGER)
        general = next(q for q in stats["queues"] if q["queue"] == "general")
        assert general["closed"] >= 1 and general["avg_time_to_accept_s"] is not None
        for socket in (op1, op2, me):
            await socket.close()

    run(scenario)


def test_two_operators_accepting_one_chat_at_once_exactly_one_wins_every_time(workers):
    first, second = workers

    async def scenario(session):
        op3 = await connect(session, first.url, op(3))
        op4 = await connect(session, second.url, op(4))
        await go_online(op3, capacity=100)
        await go_online(op4, capacity=100)
        for race in range(25):
            chat_id = (await open_chat(second, client(2), f"race {race}"))["chat_id"]
            await asyncio.gather(op3.next("new_chat_available", lambda f: f["payload"]["chat_id"] == chat_id),
                                 op4.next("new_chat_available", lambda f: f["payload"]["chat_id"] == chat_id))
            r3, r4 = await asyncio.gather(op3.send("accept_chat", {"chat_id": chat_id}),
                                          op4.send("accept_chat", {"chat_id": chat_id}))
            answers = await asyncio.gather(
                op3.next(where=lambda f: f.get("request_id") == r3), op4.next(where=lambda f: f.get("request_id") == r4))
            kinds = sorted(a["type"] for a in answers)
            assert kinds == ["chat_assigned", "error"], answers
            loser = next(a for a in answers if a["type"] == "error")
            assert loser["payload"]["code"] == "already_assigned"
        status, board = await asyncio.to_thread(http_get, f"{first.url}{API}/admin/operators", ADMIN)
        chats = {o["operator_id"]: len(o["chats"]) for o in board["operators"]}
        assert chats["op3"] + chats["op4"] == 25
        await op3.close()
        await op4.close()

    run(scenario)


def test_a_client_who_reconnects_gets_what_was_said_meanwhile_exactly_once(workers):
    first, second = workers

    async def scenario(session):
        op5 = await connect(session, first.url, op(5))
        await go_online(op5)
        chat_id = (await open_chat(first, client(3), "hello"))["chat_id"]
        await op5.send("accept_chat", {"chat_id": chat_id})
        await op5.next("chat_assigned", lambda f: f["payload"]["chat_id"] == chat_id)
        me = await connect(session, second.url, client(3), chat_id, since=0)
        await me.next("message")
        await op5.send("message", {"chat_id": chat_id, "text": "one"})
        seen = (await me.next("message", lambda f: f["payload"]["message"] == "one"))["payload"]["message_id"]
        await me.close()
        for text in ("two", "three", "four"):  # while the client is away
            await op5.send("message", {"chat_id": chat_id, "text": text})
        back = await connect(session, first.url, client(3), chat_id, since=seen)  # on the other worker
        missed = [(await back.next("message"))["payload"]["message"] for _ in range(3)]
        assert missed == ["two", "three", "four"]
        await op5.send("message", {"chat_id": chat_id, "text": "five"})
        assert (await back.next("message"))["payload"]["message"] == "five"
        await asyncio.sleep(0.5)
        assert [f["payload"]["message"] for f in back.of_type("message")] == ["two", "three", "four", "five"]
        await back.close()
        await op5.close()

    run(scenario)


def test_an_operator_who_disconnects_beyond_the_grace_period_has_chats_handed_on(workers):
    first, second = workers

    async def scenario(session):
        op6 = await connect(session, first.url, op(6))
        await go_online(op6)
        chat_id = (await open_chat(first, client(4), "help"))["chat_id"]
        await op6.send("accept_chat", {"chat_id": chat_id})
        await op6.next("chat_assigned", lambda f: f["payload"]["chat_id"] == chat_id)
        me = await connect(session, second.url, client(4), chat_id)
        await op6.close()  # gone; the grace period is 2 s here
        moved = await me.next("chat_transferred", timeout=20)
        assert moved["payload"]["from_operator_id"] == "op6" and moved["payload"]["to_operator_id"] is None
        status, queue = await asyncio.to_thread(http_get, f"{second.url}{API}/chats/queue", MANAGER)
        general = next(q for q in queue["queues"] if q["queue"] == "general")
        order = [c["chat_id"] for c in general["chats"]]
        ours = general["chats"][order.index(chat_id)]
        # back at the front: ahead of every chat that came after it (chats of earlier tests may be older)
        assert all(c["created_at"] <= ours["created_at"] for c in general["chats"][:order.index(chat_id)])
        helper = await connect(session, second.url, op(5))  # someone comes: the queue greets them
        greeting = await helper.next("new_chat_available", lambda f: f["payload"]["chat_id"] == chat_id)
        assert greeting["payload"]["client_id"] == "c4" and greeting["payload"]["waiting_since"].endswith("Z")
        await go_online(helper)
        await helper.send("accept_chat", {"chat_id": chat_id})
        assert (await me.next("chat_assigned"))["payload"]["operator_id"] == "op5"
        await helper.close()
        await me.close()

    run(scenario)


def test_automatic_assignment_fills_the_fairest_operator_and_frees_capacity_in_order(workers):
    first, second = workers

    async def scenario(session):
        op1 = await connect(session, second.url, op(1))
        await go_online(op1, capacity=1)
        one = (await open_chat(first, client(5), queue="auto"))["chat_id"]
        assert (await op1.next("chat_assigned", lambda f: f["payload"]["chat_id"] == one))["payload"]["how"] == "auto"
        two = (await open_chat(first, client(6), queue="auto"))["chat_id"]
        three = (await open_chat(first, client(7), queue="auto"))["chat_id"]
        await op1.send("close_chat", {"chat_id": one})
        assert (await op1.next("chat_assigned"))["payload"]["chat_id"] == two  # the oldest waiting first
        await admin(first, "update-operator-status", {"operator_id": "op1", "status": "offline"})
        status, queue = await asyncio.to_thread(http_get, f"{first.url}{API}/chats/queue", MANAGER)
        auto = next(q for q in queue["queues"] if q["queue"] == "auto")
        assert [c["chat_id"] for c in auto["chats"]] == [two, three]  # never to an offline operator
        for chat_id in (two, three):
            await admin(first, "close-chat", {"chat_id": chat_id})
        await op1.close()

    run(scenario)


def test_admins_transfer_assign_a_lawyer_reprioritise_and_close(workers, deployment):
    first, second = workers

    async def scenario(session):
        op1, op2 = await connect(session, first.url, op(1)), await connect(session, second.url, op(2))
        await go_online(op1, capacity=10)
        await go_online(op2, capacity=10)
        low = (await open_chat(first, client(8), "low"))["chat_id"]
        high = (await open_chat(first, client(9), "high"))["chat_id"]
        answer = await admin(second, "update-queue-priority", {"chat_id": high, "priority": 5})
        assert answer["outcome"] == "queue_updated"
        status, queue = await asyncio.to_thread(http_get, f"{first.url}{API}/admin/queue", ADMIN)
        general = next(q for q in queue["queues"] if q["queue"] == "general")
        order = [c["chat_id"] for c in general["chats"]]
        assert order.index(high) < order.index(low)

        await op1.send("accept_chat", {"chat_id": low})
        await op1.next("chat_assigned", lambda f: f["payload"]["chat_id"] == low)
        moved = await admin(first, "transfer-chat", {"chat_id": low, "target_operator_id": "op2", "reason": "law"})
        assert moved["outcome"] == "transfer_done" and moved["to_operator_id"] == "op2"
        assert (await op2.next("chat_assigned", lambda f: f["payload"]["chat_id"] == low))["payload"]["how"] == \
            "transferred"
        await op1.next("chat_transferred", lambda f: f["payload"]["chat_id"] == low)

        lawyer_chat = (await admin(second, "assign-lawyer", {"chat_id": low, "lawyer_id": "law1"}))["chat_id"]
        counsel = await connect(session, second.url, lawyer(1), lawyer_chat)
        me = await connect(session, first.url, client(8), lawyer_chat)
        await counsel.send("message", {"text": "I am your lawyer"})
        assert (await me.next("message"))["payload"]["sender_role"] == "lawyer"
        await me.send("message", {"text": "thank you"})
        assert (await counsel.next("message", lambda f: f["payload"]["sender_id"] == "c8"))["payload"]["message"] == \
            "thank you"
        await op2.send("message", {"chat_id": lawyer_chat, "text": "may I?"})
        refused = await op2.next("error")
        assert refused["payload"]["code"] == "not_participant"  # the lawyer chat is the client's and the lawyer's

        await admin(first, "close-chat", {"chat_id": low, "reason": "done"})
        await admin(first, "close-chat", {"chat_id": low}, expect=200)  # twice: the same answer
        status, missing = await asyncio.to_thread(http_request, "POST", f"{first.url}{API}/admin/close-chat",
                                                  {"chat_id": "no-such-chat"}, ADMIN)
        assert status == 404 and missing["error"]["code"] == "unknown_chat"
        await admin(first, "close-chat", {"chat_id": high})
        status, stats = await asyncio.to_thread(http_get, f"{first.url}{API}/admin/stats", ADMIN)
        assert stats["totals"]["lawyer_chats"] >= 1

        latest = {}
        for key, value in await asyncio.to_thread(consume_all, deployment.broker.bootstrap,
                                                  deployment.topic("chat_assignments"), 1.0):
            latest[key.decode()] = orjson.loads(value)
        assert latest[low]["state"] == "closed" and latest[lawyer_chat]["operator_id"] == "law1"
        assert latest[lawyer_chat]["kind"] == "lawyer" and latest[lawyer_chat]["parent_id"] == low
        for socket in (op1, op2, counsel, me):
            await socket.close()

    run(scenario)


def test_roles_decide_who_sees_and_does_what(workers):
    first, second = workers

    async def scenario(session):
        chat_id = (await open_chat(first, client(10), "private"))["chat_id"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(session, first.url, client(11), chat_id)
        assert refused.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(session, first.url, "no-such-token")
        assert refused.value.status == 401
        for path, token, expected in [
            ("/chats/queue", client(10), 403), ("/chats/queue", op(1), 200), ("/admin/queue", op(1), 403),
            ("/admin/stats", ADMIN, 200), (f"/chats/{chat_id}/messages", client(11), 403),
            (f"/chats/{chat_id}/messages", client(10), 200), ("/chats/stats", MANAGER, 200),
        ]:
            status, answer = await asyncio.to_thread(http_get, f"{second.url}{API}{path}", token)
            assert status == expected, (path, token, answer)
            if status >= 400:
                assert set(answer["error"]) == {"code", "message"}
        status, mine = await asyncio.to_thread(http_get, f"{second.url}{API}/chats", client(10))
        assert {c["client_id"] for c in mine["chats"]} == {"c10"}
        status, theirs = await asyncio.to_thread(http_get, f"{second.url}{API}/chats", client(11))
        assert chat_id not in {c["chat_id"] for c in theirs["chats"]}
        status, answer = await asyncio.to_thread(http_request, "POST", f"{first.url}{API}/admin/close-chat",
                                                 {"chat_id": chat_id}, op(1))
        assert status == 403
        status, answer = await asyncio.to_thread(http_request, "POST", f"{first.url}{API}/chats",
                                                 {"priority": 9}, client(10))
        assert status == 403  # a client does not jump the queue
        me = await connect(session, first.url, client(10), chat_id)
        await me.send("accept_chat", {"chat_id": chat_id})
        assert (await me.next("error"))["payload"]["code"] == "forbidden"
        await me.send("message", {"text": "x", "chat_id": "someone-elses"})
        assert (await me.next("error"))["payload"]["code"] == "forbidden"
        await me.close()

    run(scenario)


def test_bad_frames_big_messages_and_floods_get_clear_errors(workers):
    first, _ = workers

    async def scenario(session):
        chat_id = (await open_chat(first, client(12)))["chat_id"]
        me = await connect(session, first.url, client(12), chat_id)
        await me.ws.send_str("not json")
        assert (await me.next("error"))["payload"]["code"] == "bad_request"
        await me.send("shout", {"text": "x"})
        assert (await me.next("error"))["payload"]["code"] == "bad_request"
        await me.send("message", {"text": "x" * 501})
        error = await me.next("error")
        assert error["payload"]["code"] == "bad_request" and "text" in error["payload"]["message"]
        await me.send("message", {})
        assert (await me.next("error"))["payload"]["code"] == "bad_request"
        await me.send("message", {"text": "x" * 100_000})  # over the frame limit (64 KiB): said, the socket stays
        error = await me.next("error")
        assert error["payload"]["code"] == "too_large" and "65536 bytes" in error["payload"]["message"]
        assert not me.ws.closed
        for n in range(60):  # burst 40, 10/s
            await me.send("message", {"text": f"spam {n}"})
        limited = await me.next("error", lambda f: f["payload"]["code"] == "rate_limited")
        assert "slow down" in limited["payload"]["message"]
        deadline = time.monotonic() + 15  # the burst's echoes, however busy the machine
        while len(me.of_type("message")) < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        messages = [f for f in me.of_type("message")]
        assert 40 <= len(messages) < 60  # the rest was refused, with a reason, not lost silently
        await me.close()
        huge = await connect(session, first.url, client(12), chat_id)
        await huge.ws.send_str("x" * (2 * 1024 * 1024))  # over the wire limit (1 MiB): closed, as README says
        await asyncio.wait_for(huge.reader, 15)
        assert huge.ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG

    run(scenario)


def test_bad_records_on_the_chat_topics_are_dead_letters_and_the_desk_goes_on(deployment, workers):
    first, _ = workers
    poison = [
        (b"x", b"not json"),
        (b"x", orjson.dumps({"type": "chat_created", "chat_id": "p1"})),  # no client, no time
        (b"x", orjson.dumps({"type": "operator_accept_chat", "chat_id": "p1", "operator_id": "o", "at": 1.7e9})),
    ]
    produce(deployment.broker.bootstrap, deployment.topic("chat_events"), poison)
    produce(deployment.broker.bootstrap, deployment.topic("admin_actions"), [
        (b"x", orjson.dumps({"type": "close_chat", "chat_id": "p1", "by_id": "c1", "by_role": "client",
                             "at": 1.7e9}))])
    letters = wait_until(lambda: (d := [orjson.loads(v) for _, v in consume_all(
        deployment.broker.bootstrap, deployment.topic("dead-letters"), 1.0)]) and len(
        [x for x in d if "chat_events" in x.get("source_topic", "") or "admin_actions" in x.get("source_topic", "")]) >= 4 and d,
        30, 0.5, "four dead letters")
    reasons = " | ".join(x["reason"] for x in letters)
    assert "not JSON" in reasons and "Field required" in reasons and "operator_accept_chat" in reasons
    assert "admin action by 'client'" in reasons

    async def scenario(session):  # and the desk still works
        opened = await open_chat(first, client(13), "still here?")
        assert opened["outcome"] == "chat_created"

    run(scenario)



@pytest.mark.parametrize("action, body, field", [
    ("update-operator-status", {"operator_id": "op-strict", "status": "online", "capacity": True}, "capacity"),
    ("update-operator-status", {"operator_id": "op-strict", "status": "online", "lawyer": 1}, "lawyer"),
    ("update-operator-status", {"operator_id": "op-strict", "status": "online", "capacity": 2.5}, "capacity"),
    ("update-queue-priority", {"chat_id": "c", "priority": True}, "priority"),
], ids=["capacity-bool", "lawyer-number", "capacity-fraction", "priority-bool"])
def test_numbers_and_booleans_in_a_body_are_what_they_say(workers, action, body, field):
    """A boolean is not a number and a number not a boolean (issue 24: `capacity: true` was 200)."""
    status, answer = http_request("POST", f"{workers[0].url}{API}/admin/{action}", body, ADMIN)
    assert status == 400 and answer["error"]["code"] == "bad_request", answer
    assert field in answer["error"]["message"]
