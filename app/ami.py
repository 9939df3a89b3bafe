"""An asyncio client of the Asterisk Manager Interface (AMI), our own and small.

AMI is a line protocol over TCP: the server greets with one banner line
(`Asterisk Call Manager/<version>`), then both sides exchange messages of `Key: Value`
lines ended by an empty line. The client sends `Action: X` with an `ActionID`; the server
answers `Response: Success|Error|Follows|Goodbye` with the same `ActionID`, and sends
`Event: Name` messages whenever it likes. An action that lists things (`QueueStatus`)
answers `EventList: start`, then events carrying its `ActionID`, then an event whose name
ends in `Complete`.

`AmiClient` is a mode `Service` that keeps one logged-in connection: it connects, logs in,
reads, and on any loss fails the pending actions at once and reconnects with backoff; an
exception never ends it. Callers see `action` / `action_list` (and `queue_pause`,
`queue_status` over them) raising an `AmiError` when AMI cannot answer: AMI is
best-effort for the service, so callers log and count, they never wait on it for long.
Every action's outcome is counted in `switchboard_external_calls_total{system="ami"}`;
`switchboard_ami_connected` says whether we are logged in.

The transport is `open_connection` (asyncio's by default), so a test can hand in its own.
This module knows AMI, not our domain: what a CRM status means for a queue pause is
decided elsewhere.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Awaitable, Callable, Mapping, Optional, Union
from urllib.parse import unquote, urlsplit

from mode import Service
from mode.utils.types.trees import NodeT
from pydantic import BeforeValidator

from app import metrics

__all__ = [
    "AmiClient", "AmiError", "AmiProtocolError", "AmiRefused", "AmiSettings", "AmiTimeout", "AmiUnavailable",
    "AmiUrlSetting", "Backoff", "DEFAULT_PORT", "OpenConnection", "QueueEntry", "QueueMember", "encode_message", "parse_url",
    "queue_entry_from_event", "queue_member_from_event",
    "read_message",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 5038
BANNER_PREFIX = "Asterisk Call Manager/"
SYSTEM = "ami"  # the `system` label of metrics.external_calls

OpenConnection = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
EventHandler = Callable[[dict[str, str]], None]


class AmiError(Exception):
    """AMI did not do what was asked."""


class AmiUnavailable(AmiError):
    """Not connected and logged in, or the connection was lost before the answer."""


class AmiTimeout(AmiError):
    """No (complete) answer within the action timeout."""


class AmiRefused(AmiError):
    """Asterisk answered `Response: Error`; the message is its `Message`."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action, self.message = action, message


class AmiProtocolError(AmiError):
    """The peer does not speak AMI (no banner, a malformed message)."""


@dataclass(frozen=True, slots=True)
class AmiSettings:
    """Where AMI is and who we are there (`ami://user:secret@host:port`)."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_url(url: str) -> AmiSettings:
    """`ami://user:secret@host[:port]` (port 5038 unless given; user and secret %-decoded)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError when not a number in range
    except ValueError as exc:
        raise ValueError(f"bad AMI URL {_redacted(url)!r}: {exc}") from None
    problems = []
    if parts.scheme != "ami":
        problems.append("the scheme must be ami://")
    if not parts.hostname:
        problems.append("no host")
    if not parts.username:
        problems.append("no user")
    if parts.password is None:
        problems.append("no secret")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        problems.append("nothing may follow host:port")
    if problems:
        raise ValueError(f"bad AMI URL {_redacted(url)!r} (expected ami://user:secret@host:port): {', '.join(problems)}")
    assert parts.hostname and parts.username and parts.password is not None  # checked above; for mypy
    return AmiSettings(parts.hostname, port or DEFAULT_PORT, unquote(parts.username), unquote(parts.password))


def _redacted(url: str) -> str:
    """The URL without its secret, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between reconnects: `initial_s` doubling (`factor`) up to `max_s`, each off by up to ±`jitter`."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2  # a fraction of the wait: clients restarted together do not reconnect together

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before reconnect number `attempt` (0 for the first after a loss)."""
        base = min(self.max_s, self.initial_s * self.factor ** min(attempt, 64))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rng() - 1.0)))


@dataclass(frozen=True, slots=True)
class QueueMember:
    """One member of one queue, as `QueueStatus` reports it."""

    queue: str
    interface: str  # the member's Location (e.g. SIP/1001, PJSIP/1001, Local/1001@agents)
    name: str
    paused: bool
    paused_reason: str
    in_call: bool
    state_interface: str = ""  # the device whose state says the member's (Local/ members: their phone)


def queue_member_from_event(event: Mapping[str, str]) -> QueueMember:
    """A `QueueMember` event of `QueueStatus` as a QueueMember (older Asterisks say Interface, not Location)."""
    interface = event.get("Location") or event.get("Interface") or event.get("StateInterface") or ""
    return QueueMember(
        queue=event.get("Queue", ""),
        interface=interface,
        name=event.get("MemberName") or event.get("Name") or interface,
        paused=event.get("Paused", "0") == "1",
        paused_reason=event.get("PausedReason", ""),
        in_call=event.get("InCall", "0") == "1",
        state_interface=event.get("StateInterface", ""),
    )


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One call waiting in one queue, as `QueueStatus` reports it."""

    queue: str
    uniqueid: str  # the channel's uniqueid: queue_log's call id
    position: Optional[int]
    callerid: str
    wait_s: float


def queue_entry_from_event(event: Mapping[str, str]) -> QueueEntry:
    """A `QueueEntry` event of `QueueStatus` as a QueueEntry."""
    position = event.get("Position", "")
    try:
        wait = max(0.0, float(event.get("Wait", "0") or 0))
    except ValueError:
        wait = 0.0
    return QueueEntry(queue=event.get("Queue", ""), uniqueid=event.get("Uniqueid", ""),
                      position=int(position) if position.isdigit() else None,
                      callerid=event.get("CallerIDNum", "") or "", wait_s=wait)


def _url_setting(value: object) -> object:
    """`AMI_URL` as a setting: empty is unset; malformed refuses the start (never saying the secret)."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            parse_url(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return value


AmiUrlSetting = Annotated[Optional[str], BeforeValidator(_url_setting)]


def encode_message(fields: Mapping[str, str]) -> bytes:
    """One AMI message on the wire; a CR or LF inside a field would forge other fields, so it is refused."""
    lines = []
    for key, value in fields.items():
        if any(c in key for c in "\r\n:") or "\r" in value or "\n" in value:
            raise ValueError(f"AMI field {key!r}: a line break in a name or value, or a colon in a name")
        lines.append(f"{key}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode()


async def read_message(reader: asyncio.StreamReader) -> Optional[dict[str, str]]:
    """The next message, or None at the end of the stream. A repeated key (`Output`, `ChanVariable`)
    keeps every value, one per line; a line without `: ` (old `Response: Follows` output) goes to Output."""
    message: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if not raw:
            return None  # EOF; a half message is no message
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if message:
                return message
            continue  # stray blank lines between messages
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
        if not sep:
            key, value = "Output", line
        key = key.strip()
        message[key] = f"{message[key]}\n{value}" if key in message else value


@dataclass(eq=False)
class _Pending:
    """An action waiting for its answer: the response, and for an event list its events up to `…Complete`."""

    name: str
    listing: bool
    done: "asyncio.Future[tuple[dict[str, str], list[dict[str, str]]]]"
    response: Optional[dict[str, str]] = None
    events: list[dict[str, str]] = field(default_factory=list)

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)

    def finish(self) -> None:
        if not self.done.done():
            assert self.response is not None
            self.done.set_result((self.response, self.events))


class AmiClient(Service):
    """One AMI connection, kept logged in by a background task; actions are correlated by ActionID."""

    def __init__(
        self,
        url: Union[str, AmiSettings],
        *,
        on_event: Optional[EventHandler] = None,
        connect_timeout_s: float = 5.0,
        action_timeout_s: float = 5.0,
        backoff: Backoff = Backoff(),
        keepalive_s: Optional[float] = 30.0,
        open_connection: Optional[OpenConnection] = None,
        beacon: Optional[NodeT] = None,
        loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> None:
        self.settings = parse_url(url) if isinstance(url, str) else url
        self.on_event = on_event
        self.connect_timeout_s = connect_timeout_s
        self.action_timeout_s = action_timeout_s
        self.backoff = backoff
        self.keepalive_s = keepalive_s  # a Ping this often: a dead peer is noticed even without traffic
        self.open_connection: OpenConnection = open_connection or asyncio.open_connection
        self._writer: Optional[asyncio.StreamWriter] = None
        self._logged_in = asyncio.Event()
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)  # an answer to a previous process or connection never matches
        self._warned: Optional[str] = None  # the last problem logged as a warning (the rest go to debug)
        self._warned_at = 0.0
        self._logins = 0  # successful logins so far: a session that logged in starts the backoff over
        super().__init__(beacon=beacon, loop=loop)  # type: ignore[arg-type]  # mode types beacon without Optional

    @property
    def connected(self) -> bool:
        """Connected and logged in: actions can be sent."""
        return self._logged_in.is_set()

    async def wait_connected(self, timeout_s: float) -> bool:
        """Whether the client is logged in within `timeout_s` (at start-up, for tests)."""
        try:
            await asyncio.wait_for(self._logged_in.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    # --- actions ---------------------------------------------------------------------------

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        """Send action `name` with `fields`; its response. Raises AmiUnavailable, AmiTimeout or AmiRefused."""
        response, _ = await self._counted(name, fields, listing=False)
        return response

    async def action_list(self, name: str, **fields: str) -> list[dict[str, str]]:
        """Send an action answered by an event list; the events of the list, without the final `…Complete`."""
        _, events = await self._counted(name, fields, listing=True)
        return events

    async def queue_pause(
        self, interface: str, paused: bool, queue: Optional[str] = None, reason: Optional[str] = None
    ) -> dict[str, str]:
        """Pause or unpause a member in one queue, or in all its queues when `queue` is None."""
        fields = {"Interface": interface, "Paused": "true" if paused else "false"}
        if queue is not None:
            fields["Queue"] = queue
        if reason is not None:
            fields["Reason"] = reason
        return await self.action("QueuePause", **fields)

    async def queue_status(self, queue: Optional[str] = None) -> list[QueueMember]:
        """The members of one queue, or of all queues (QueueStatus; its QueueParams and QueueEntry are left out)."""
        return (await self.queue_snapshot(queue))[0]

    async def queue_snapshot(self, queue: Optional[str] = None) -> tuple[list[QueueMember], list[QueueEntry]]:
        """The members and waiting calls of one queue, or of all, as one `QueueStatus` answers them."""
        fields = {"Queue": queue} if queue is not None else {}
        events = await self.action_list("QueueStatus", **fields)
        members = [queue_member_from_event(e) for e in events if e.get("Event") == "QueueMember"]
        entries = [queue_entry_from_event(e) for e in events if e.get("Event") == "QueueEntry" and e.get("Uniqueid")]
        return members, entries

    async def ping(self) -> None:
        """A round trip to Asterisk (a health check)."""
        await self.action("Ping")

    async def _counted(self, name: str, fields: dict[str, str], listing: bool) -> tuple[dict[str, str], list[dict[str, str]]]:
        """`_request`, its outcome counted in /metrics (a cancelled caller counts nothing)."""
        try:
            answer = await self._request(name, fields, listing=listing)
        except AmiError as exc:
            metrics.external_calls.labels(system=SYSTEM, outcome=_outcome(exc)).inc()
            raise
        metrics.external_calls.labels(system=SYSTEM, outcome="ok").inc()
        return answer

    async def _request(
        self, name: str, fields: Mapping[str, str], *, listing: bool = False, logging_in: bool = False
    ) -> tuple[dict[str, str], list[dict[str, str]]]:
        writer = self._writer
        if writer is None or (not logging_in and not self.connected):
            raise AmiUnavailable(f"{name}: not connected to AMI at {self.settings.address}")
        action_id = f"{self._id_prefix}-{next(self._ids)}"
        data = encode_message({"Action": name, "ActionID": action_id, **fields})
        pending = _Pending(name, listing, asyncio.get_running_loop().create_future())
        self._pending[action_id] = pending
        try:
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, RuntimeError) as exc:  # RuntimeError: the transport is closing
                raise AmiUnavailable(f"{name}: the connection to AMI was lost ({exc})") from None
            try:
                return await asyncio.wait_for(pending.done, self.action_timeout_s)
            except asyncio.TimeoutError:
                raise AmiTimeout(f"{name}: no answer from AMI within {self.action_timeout_s:g} s") from None
        finally:
            self._pending.pop(action_id, None)
            if not pending.done.done():
                pending.done.cancel()
            elif not pending.done.cancelled():
                pending.done.exception()  # retrieved: no "exception was never retrieved" noise

    # --- the connection --------------------------------------------------------------------

    @Service.task
    async def _keep_connected(self) -> None:
        attempt = 0
        while not self.should_stop:
            logins = self._logins
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever went wrong, the next attempt comes after the backoff
                self._problem(_describe(exc))
            else:
                self._problem("the connection was closed")
            finally:
                self._drop_connection()
                if self._logins != logins:
                    attempt = 0  # a session that logged in starts the backoff over
            if self.should_stop:
                break
            wait_s = self.backoff.delay(attempt)
            attempt += 1
            log.debug("AMI at %s: reconnecting in %.2f s (attempt %d)", self.settings.address, wait_s, attempt)
            await self.sleep(wait_s)

    async def _session(self) -> None:
        """One connection: connect, banner, Login, then read until it ends."""
        address = self.settings.address
        try:
            reader, writer = await asyncio.wait_for(
                self.open_connection(self.settings.host, self.settings.port), self.connect_timeout_s
            )
        except asyncio.TimeoutError:
            raise AmiUnavailable(f"no connection within {self.connect_timeout_s:g} s") from None
        self._writer = writer
        try:
            banner = await asyncio.wait_for(reader.readline(), self.connect_timeout_s)
        except asyncio.TimeoutError:
            raise AmiProtocolError(f"connected, but no banner within {self.connect_timeout_s:g} s") from None
        if not banner:
            raise AmiUnavailable("closed before its banner")
        greeting = banner.decode("utf-8", "replace").strip()
        if not greeting.startswith(BANNER_PREFIX):
            raise AmiProtocolError(f"not an AMI server: it greeted {banner[:80]!r}")
        reading = asyncio.ensure_future(self._read(reader))
        try:
            try:
                await self._request(
                    "Login", {"Username": self.settings.username, "Secret": self.settings.secret}, logging_in=True
                )
            except AmiRefused as exc:
                raise _LoginRefused(f"authentication failed for user {self.settings.username!r}: {exc.message}") from None
            self._logins += 1
            self._logged_in.set()
            metrics.ami_connected.set(1)
            log.info("AMI at %s: logged in as %s (%s)", address, self.settings.username, greeting)
            self._warned = None
            await self._watch(reading)
        finally:
            if not reading.done():
                reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    async def _watch(self, reading: "asyncio.Future[None]") -> None:
        """Wait for the reader to end; a Ping every `keepalive_s` proves the peer is still there (a
        half-open TCP connection shows no error until something is sent)."""
        while True:
            done, _ = await asyncio.wait({reading}, timeout=self.keepalive_s)
            if done:
                reading.result()  # the reader's error, if any, ends the session with it
                return
            try:
                await self._request("Ping", {})
            except AmiRefused:
                pass  # an answer all the same: the peer is alive
            except AmiTimeout:
                raise AmiUnavailable(f"no answer to a keep-alive Ping within {self.action_timeout_s:g} s") from None

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await read_message(reader)
                if message is None:
                    return
                self._dispatch(message)
        finally:
            self._lost()

    def _dispatch(self, message: dict[str, str]) -> None:
        """A response or a listed event to the action waiting for it; any other event to `on_event`."""
        pending = self._pending.get(message.get("ActionID", ""))
        if "Response" in message:
            if pending is None:
                log.debug("AMI: a response nobody waits for (timed out?): %s", message.get("ActionID"))
                return
            if message["Response"] == "Error":
                pending.fail(AmiRefused(pending.name, message.get("Message", "(no message)")))
            elif pending.response is None:
                pending.response = message
                if not pending.listing:
                    pending.finish()
            return
        event = message.get("Event")
        if pending is not None and pending.listing and event is not None:
            if event.endswith("Complete") or message.get("EventList") == "Complete":
                if pending.response is None:
                    pending.response = {}  # the list's events came without a response first; the list still stands
                pending.finish()
            else:
                pending.events.append(message)
            return
        if self.on_event is not None:
            try:
                self.on_event(message)
            except Exception:  # one bad handler must not end the connection
                log.exception("AMI: on_event failed for %s", event)

    def _drop_connection(self) -> None:
        """Closed by us: the socket too."""
        self._lost()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _lost(self) -> None:
        """The connection is gone: no new actions, and every pending one fails now rather than at its timeout."""
        self._logged_in.clear()
        metrics.ami_connected.set(0)
        pending, self._pending = self._pending, {}
        for p in pending.values():
            p.fail(AmiUnavailable(f"{p.name}: the connection to AMI at {self.settings.address} was lost"))

    def _problem(self, what: str) -> None:
        """A warning when the problem changes (and every 5 min while it lasts); the retries in between at debug."""
        now = time.monotonic()
        if self.should_stop:
            return
        if what != self._warned or now - self._warned_at >= 300.0:
            log.warning("AMI at %s: %s; retrying with backoff (up to %g s)", self.settings.address, what, self.backoff.max_s)
            self._warned, self._warned_at = what, now
        else:
            log.debug("AMI at %s: %s", self.settings.address, what)

    async def on_stop(self) -> None:
        """Logoff when logged in, then close the socket."""
        if self.connected:
            try:
                await asyncio.wait_for(self._request("Logoff", {}), 1.0)
            except (AmiError, asyncio.TimeoutError):
                pass  # leaving anyway; Asterisk cleans up a closed session
        self._drop_connection()


class _LoginRefused(AmiError):
    """Login answered `Response: Error`."""


def _outcome(exc: AmiError) -> str:
    for kind, outcome in ((AmiRefused, "refused"), (AmiTimeout, "timeout"), (AmiUnavailable, "unavailable")):
        if isinstance(exc, kind):
            return outcome
    return "error"


def _describe(exc: Exception) -> str:
    if isinstance(exc, AmiError):
        return str(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
