"""A double of Asterisk's Manager Interface (AMI) for the tests and `make run`.

It speaks the real wire format (the banner, `Login`, `Action`/`Response` with `ActionID`,
events, event lists ending in `…Complete`) and keeps what an operator-status sync needs of
Asterisk: queue members with their names, paused flag and reason, changed by `QueuePause`
(a member added says `QueueMemberAdded`), and calls waiting in the queues; both read by
`QueueStatus` (`QueueParams`, `QueueMember`, `QueueEntry`). It records every action it received and can be told to fail an
action, to answer it late, to drop its clients or to play dead, and to emit any event
(`PeerStatus`, `ContactStatus`).

- in-process: `AmiDouble` (`await double.start()`, its `.port`, `await double.stop()`);
- as a process: `python -m dev.ami_double --port P --control-port C [--username U
  --secret S] [--members queue:SIP/1001,...] [--lenient]`, with an HTTP control API on
  127.0.0.1:C mirroring the in-process control (`control_app`).

Where it differs from Asterisk, on purpose: an action told to answer late is answered in a
task of its own, so later actions of the same session may overtake it (Asterisk answers a
session's actions in order); that is how the tests show answers are matched by ActionID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from app.ami import encode_message, read_message
from dev.control import control_errors, read_body
from web.errors import json_error

__all__ = [
    "AmiDouble", "BANNER", "DEFAULT_SECRET", "DEFAULT_USERNAME", "Member", "ReceivedAction", "add_arguments", "control_app",
    "main", "parse_members", "run",
]

log = logging.getLogger(__name__)

BANNER = "Asterisk Call Manager/7.0.3"
DEFAULT_USERNAME = "switchboard"
DEFAULT_SECRET = "switchboard"
LENIENT_QUEUE = "default"  # where --lenient adds an unknown interface paused without a Queue
_TRUE = {"yes", "true", "y", "t", "1", "on"}  # Asterisk's ast_true


@dataclass
class Member:
    """A queue member as Asterisk keeps it (the part a pause sync touches)."""

    queue: str
    interface: str
    name: str
    paused: bool = False
    reason: str = ""
    in_call: bool = False
    calls_taken: int = 0
    last_pause: int = 0  # epoch seconds of the last pause, 0 when never


@dataclass
class Entry:
    """A call waiting in a queue (QueueStatus's QueueEntry)."""

    queue: str
    uniqueid: str
    callerid: str = ""
    since: float = 0.0  # epoch seconds it began to wait


@dataclass(frozen=True)
class ReceivedAction:
    """One action as a client sent it: its name, its ActionID, its other fields."""

    name: str
    fields: dict[str, str]  # without Action and ActionID
    at: float  # wall clock
    action_id: Optional[str] = None


_Reply = Callable[..., None]  # reply(response, **fields): answers the action with its ActionID


@dataclass
class _Failure:
    remaining: Optional[int]  # None: every time until cleared
    message: str


@dataclass(eq=False)
class _Session:
    writer: asyncio.StreamWriter
    logged_in: bool = False
    tasks: set["asyncio.Task[None]"] = field(default_factory=set)

    def send(self, fields: Mapping[str, str]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_message(fields))


def _received(message: Mapping[str, str]) -> ReceivedAction:
    fields = {k: v for k, v in message.items() if k.lower() not in ("action", "actionid")}
    return ReceivedAction(_get(message, "Action") or "", fields, time.time(), _get(message, "ActionID"))


def _get(fields: Mapping[str, str], key: str) -> Optional[str]:
    """A header, case-insensitively like Asterisk's astman_get_header."""
    lowered = key.lower()
    for k, v in fields.items():
        if k.lower() == lowered:
            return v
    return None


class AmiDouble:
    """An AMI server on localhost with queue members, a record of actions and fault injection."""

    def __init__(self, username: str = DEFAULT_USERNAME, secret: str = DEFAULT_SECRET, lenient: bool = False) -> None:
        self.username, self.secret = username, secret
        self.lenient = lenient  # a QueuePause for an unknown interface adds it instead of refusing
        self.queues: dict[str, dict[str, Member]] = {}
        self.entries: dict[str, dict[str, Entry]] = {}  # queue -> uniqueid -> the call waiting
        self.actions: list[ReceivedAction] = []
        self.port = 0
        self.down = False
        self._failures: dict[str, _Failure] = {}
        self._delays: dict[str, float] = {}
        self._sessions: set[_Session] = set()
        self._server: Optional[asyncio.AbstractServer] = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "AmiDouble":
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.disconnect_all()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # --- control ---------------------------------------------------------------------------

    def fail(self, action: str, count: Optional[int] = None, message: str = "Injected failure") -> None:
        """Answer `Response: Error` to the next `count` `action`s (all while set when None; 0 clears)."""
        if count == 0:
            self._failures.pop(action.lower(), None)
        else:
            self._failures[action.lower()] = _Failure(count, message)

    def delay(self, action: str, seconds: float) -> None:
        """Answer `action` after `seconds` (0 clears)."""
        if seconds > 0:
            self._delays[action.lower()] = seconds
        else:
            self._delays.pop(action.lower(), None)

    def disconnect_all(self) -> None:
        """Close every client connection (as a restarting Asterisk would)."""
        for session in list(self._sessions):
            session.writer.close()

    def refuse_connections(self, down: bool) -> None:
        """Play dead: drop every client and close each new connection before the banner."""
        self.down = down
        if down:
            self.disconnect_all()

    def emit(self, event: Mapping[str, str]) -> None:
        """Send an event to every logged-in client."""
        for session in self._sessions:
            if session.logged_in:
                session.send(event)

    def set_member(
        self, queue: str, interface: str, paused: bool = False, reason: str = "", name: Optional[str] = None
    ) -> Member:
        member = Member(queue, interface, name or interface, paused, reason if paused else "")
        added = interface not in self.queues.get(queue, {})
        self.queues.setdefault(queue, {})[interface] = member
        if added:  # as app_queue tells when a member joins (AddQueueMember, the dialplan, a reload)
            self.emit({"Event": "QueueMemberAdded", "Privilege": "agent,all", **_member_fields(member, "Interface")})
        return member

    def remove_member(self, queue: str, interface: str) -> bool:
        members = self.queues.get(queue, {})
        removed = members.pop(interface, None) is not None
        if not members:
            self.queues.pop(queue, None)
        return removed

    def set_entry(self, queue: str, uniqueid: str, callerid: str = "", wait_s: float = 0.0) -> Entry:
        entry = Entry(queue, uniqueid, callerid, time.time() - wait_s)
        self.entries.setdefault(queue, {})[uniqueid] = entry
        return entry

    def remove_entry(self, queue: str, uniqueid: str) -> bool:
        entries = self.entries.get(queue, {})
        removed = entries.pop(uniqueid, None) is not None
        if not entries:
            self.entries.pop(queue, None)
        return removed

    def members(self) -> list[Member]:
        return [m for queue in sorted(self.queues) for _, m in sorted(self.queues[queue].items())]

    def received(self, name: str) -> list[ReceivedAction]:
        """The actions received named `name` (any case), oldest first."""
        return [a for a in self.actions if a.name.lower() == name.lower()]

    # --- the protocol ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        session = _Session(writer)
        self._sessions.add(session)
        try:
            writer.write(f"{BANNER}\r\n".encode())
            while not writer.is_closing():
                message = await read_message(reader)
                if message is None:
                    break
                self.actions.append(_received(message))
                delay = self._delays.get((_get(message, "Action") or "").lower(), 0.0)
                if delay:
                    task = asyncio.ensure_future(self._answer_later(session, message, delay))
                    session.tasks.add(task)
                    task.add_done_callback(session.tasks.discard)
                else:
                    self._answer(session, message)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(session)
            for task in list(session.tasks):
                task.cancel()
            writer.close()

    async def _answer_later(self, session: _Session, message: dict[str, str], delay: float) -> None:
        await asyncio.sleep(delay)
        self._answer(session, message)

    def _answer(self, session: _Session, message: dict[str, str]) -> None:
        name = _get(message, "Action") or ""
        action_id = _get(message, "ActionID")

        def reply(response: str, **fields: str) -> None:
            session.send({"Response": response, **({"ActionID": action_id} if action_id is not None else {}), **fields})

        key = name.lower()
        if not name:
            return reply("Error", Message="Missing action in request")
        if not session.logged_in and key not in ("login", "logoff", "challenge"):
            return reply("Error", Message="Permission denied")
        failure = self._failures.get(key)
        if failure is not None:
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[key]
            reply("Error", Message=failure.message)
            if key == "login":
                session.writer.close()
            return
        handler = getattr(self, f"_action_{key}", None)
        if handler is None:
            return reply("Error", Message="Invalid/unknown command")
        handler(session, message, reply)

    def _action_login(self, session: _Session, message: dict[str, str], reply: _Reply) -> None:
        if _get(message, "Username") != self.username or _get(message, "Secret") != self.secret:
            reply("Error", Message="Authentication failed")
            session.writer.close()  # Asterisk hangs up on a failed login
            return
        session.logged_in = True
        reply("Success", Message="Authentication accepted")
        session.send({"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "1", "LastReload": "1",
                      "Status": "Fully Booted"})

    def _action_logoff(self, session: _Session, message: dict[str, str], reply: _Reply) -> None:
        reply("Goodbye", Message="Thanks for all the fish.")
        session.writer.close()

    def _action_ping(self, session: _Session, message: dict[str, str], reply: _Reply) -> None:
        reply("Success", Ping="Pong", Timestamp=f"{time.time():.6f}")

    def _action_queuepause(self, session: _Session, message: dict[str, str], reply: _Reply) -> None:
        interface, paused_s = _get(message, "Interface"), _get(message, "Paused")
        queue, reason = _get(message, "Queue") or None, _get(message, "Reason") or ""
        if not interface:
            return reply("Error", Message="'Interface' not specified.")
        if not paused_s:
            return reply("Error", Message="'Paused' not specified.")
        paused = paused_s.lower() in _TRUE
        found = [q[interface] for name, q in sorted(self.queues.items()) if (queue is None or name == queue) and interface in q]
        if not found and self.lenient:
            found = [self.set_member(queue or LENIENT_QUEUE, interface)]
        if not found:
            return reply("Error", Message="Interface not found")
        for member in found:
            member.paused, member.reason = paused, reason if paused else ""
            if paused:
                member.last_pause = int(time.time())
        reply("Success", Message=f"Interface {'paused' if paused else 'unpaused'} successfully")
        for member in found:
            self.emit({"Event": "QueueMemberPause", "Privilege": "agent,all", **_member_fields(member, "Interface")})

    def _action_queuestatus(self, session: _Session, message: dict[str, str], reply: _Reply) -> None:
        queue, member_filter = _get(message, "Queue") or None, _get(message, "Member") or None
        action_id = {"ActionID": v} if (v := _get(message, "ActionID")) is not None else {}
        reply("Success", EventList="start", Message="Queue status will follow")
        items = 0
        for name in sorted({*self.queues, *self.entries}):
            if queue is not None and name != queue:
                continue
            members = [m for _, m in sorted(self.queues.get(name, {}).items()) if member_filter in (None, m.interface, m.name)]
            waiting = sorted(self.entries.get(name, {}).values(), key=lambda e: e.since)
            session.send({"Event": "QueueParams", "Queue": name, "Max": "0", "Strategy": "ringall", "Calls": str(len(waiting)),
                          "Holdtime": "0", "TalkTime": "0", "Completed": str(sum(m.calls_taken for m in members)),
                          "Abandoned": "0", "ServiceLevel": "0", "ServicelevelPerf": "0.0", "ServicelevelPerf2": "0.0",
                          "Weight": "0", **action_id})
            items += 1
            for member in members:
                session.send({"Event": "QueueMember", **_member_fields(member, "Location", "Name"), **action_id})
                items += 1
            for position, entry in enumerate(waiting, 1):
                session.send({"Event": "QueueEntry", "Queue": name, "Position": str(position),
                              "Channel": f"PJSIP/trunk-{entry.uniqueid}", "Uniqueid": entry.uniqueid,
                              "CallerIDNum": entry.callerid or "unknown", "CallerIDName": "unknown",
                              "ConnectedLineNum": "unknown", "ConnectedLineName": "unknown",
                              "Wait": str(int(time.time() - entry.since)), "Priority": "0", **action_id})
                items += 1
        session.send({"Event": "QueueStatusComplete", **action_id, "EventList": "Complete", "ListItems": str(items)})


def _member_fields(member: Member, interface_key: str, name_key: str = "MemberName") -> dict[str, str]:
    """A member as Asterisk (12+) describes it: `Name` and `Location` in QueueStatus's
    QueueMember, `MemberName` and `Interface` in QueueMemberAdded and QueueMemberPause."""
    return {
        "Queue": member.queue, name_key: member.name, interface_key: member.interface,
        "StateInterface": member.interface, "Membership": "dynamic", "Penalty": "0",
        "CallsTaken": str(member.calls_taken), "LastCall": "0", "LastPause": str(member.last_pause),
        "LoginTime": "0", "InCall": "1" if member.in_call else "0",
        "Status": "2" if member.in_call else "1",  # AST_DEVICE_INUSE / AST_DEVICE_NOT_INUSE
        "Paused": "1" if member.paused else "0", "PausedReason": member.reason, "Wrapuptime": "0",
    }


# --- the HTTP control API of the process -------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _MemberBody(_Body):
    queue: str
    interface: str
    paused: bool = False
    reason: str = ""
    name: Optional[str] = None


class _MemberKey(_Body):
    queue: str
    interface: str


class _EntryBody(_Body):
    queue: str
    uniqueid: str
    callerid: str = ""
    wait_s: float = 0.0


class _EntryKey(_Body):
    queue: str
    uniqueid: str


class _FailBody(_Body):
    action: str
    count: Optional[int] = None
    message: str = "Injected failure"


class _DelayBody(_Body):
    action: str
    seconds: float


class _DownBody(_Body):
    down: bool


def control_app(double: AmiDouble) -> web.Application:
    """The HTTP control of a double: what it was asked, its members, its faults."""
    routes = web.RouteTableDef()

    @routes.get("/actions")
    async def actions(request: web.Request) -> web.Response:
        return web.json_response([{"action": a.name, "action_id": a.action_id, "fields": a.fields, "at": a.at}
                                  for a in double.actions])

    @routes.delete("/actions")
    async def forget_actions(request: web.Request) -> web.Response:
        double.actions.clear()
        return web.json_response({"ok": True})

    @routes.get("/members")
    async def members(request: web.Request) -> web.Response:
        return web.json_response([asdict(m) for m in double.members()])

    @routes.post("/members")
    async def set_member(request: web.Request) -> web.Response:
        body: _MemberBody = await read_body(request, _MemberBody)
        return web.json_response(asdict(double.set_member(body.queue, body.interface, body.paused, body.reason, body.name)))

    @routes.delete("/members")
    async def remove_member(request: web.Request) -> web.Response:
        body: _MemberKey = await read_body(request, _MemberKey)
        if not double.remove_member(body.queue, body.interface):
            return json_error(404, f"{body.interface} is no member of {body.queue}")
        return web.json_response({"ok": True})

    @routes.get("/entries")
    async def entries(request: web.Request) -> web.Response:
        return web.json_response([asdict(e) for q in sorted(double.entries) for e in double.entries[q].values()])

    @routes.post("/entries")
    async def set_entry(request: web.Request) -> web.Response:
        body: _EntryBody = await read_body(request, _EntryBody)
        return web.json_response(asdict(double.set_entry(body.queue, body.uniqueid, body.callerid, body.wait_s)))

    @routes.delete("/entries")
    async def remove_entry(request: web.Request) -> web.Response:
        body: _EntryKey = await read_body(request, _EntryKey)
        if not double.remove_entry(body.queue, body.uniqueid):
            return json_error(404, f"{body.uniqueid} is not waiting in {body.queue}")
        return web.json_response({"ok": True})

    @routes.post("/fail")
    async def fail(request: web.Request) -> web.Response:
        body: _FailBody = await read_body(request, _FailBody)
        double.fail(body.action, body.count, body.message)
        return web.json_response({"ok": True})

    @routes.post("/delay")
    async def delay(request: web.Request) -> web.Response:
        body: _DelayBody = await read_body(request, _DelayBody)
        double.delay(body.action, body.seconds)
        return web.json_response({"ok": True})

    @routes.post("/disconnect")
    async def disconnect(request: web.Request) -> web.Response:
        double.disconnect_all()
        return web.json_response({"ok": True})

    @routes.post("/down")
    async def down(request: web.Request) -> web.Response:
        body: _DownBody = await read_body(request, _DownBody)
        double.refuse_connections(body.down)
        return web.json_response({"ok": True})

    @routes.post("/events")
    async def events(request: web.Request) -> web.Response:
        try:
            event = await request.json()
        except ValueError:
            return json_error(400, "the body is no JSON")
        if not isinstance(event, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in event.items()):
            return json_error(400, 'an event is one JSON object of strings, e.g. {"Event": "PeerStatus", ...}')
        double.emit(event)
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[control_errors])
    app.add_routes(routes)
    return app


# --- the process -------------------------------------------------------------------------------

def parse_members(text: str) -> list[tuple[str, str]]:
    """`queue:SIP/1001,queue:SIP/1002` as (queue, interface) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        queue, sep, interface = item.partition(":")
        if not sep or not queue or not interface:
            raise argparse.ArgumentTypeError(f"bad member {item!r}: expected queue:interface, e.g. support:SIP/1001")
        pairs.append((queue, interface))
    return pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=5038, help="AMI port (0: any free one)")
    parser.add_argument("--control-port", type=int, default=5039, help="HTTP control port (0: any free one)")
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument("--members", type=parse_members, default=[], help="queue:interface,... present at start")
    parser.add_argument("--lenient", action="store_true",
                        help="a QueuePause for an unknown interface adds it as a member instead of 'Interface not found'")


async def _serve(args: argparse.Namespace) -> None:
    double = AmiDouble(args.username, args.secret, lenient=args.lenient)
    for queue, interface in args.members:
        double.set_member(queue, interface)
    await double.start(args.host, args.port)
    runner = web.AppRunner(control_app(double), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.control_port)
    await site.start()
    control_port = runner.addresses[0][1]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    print(f"AMI double listening on {args.host}:{double.port} (user {args.username}), "
          f"control on http://{args.host}:{control_port}", flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()
        await double.stop()


def main(args: argparse.Namespace, settings: Any = None) -> int:
    """`python -m app ami-double`: serve until SIGINT or SIGTERM; exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


def run(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m dev.ami_double`: the same, with its own argument parsing."""
    parser = argparse.ArgumentParser(prog="python -m dev.ami_double", description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
