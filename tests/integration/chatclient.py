"""A real WebSocket client of the chat (aiohttp), for the integration tests and the bench."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Callable, Optional
from urllib.parse import urlencode

import aiohttp
import orjson

__all__ = ["Socket", "connect"]


class Socket:
    """One chat WebSocket: frames are read in the background and kept; `next` waits for one."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.seen = 0  # frames `next` has looked at
        self.arrived = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())
        self.received_at: list[float] = []

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(orjson.loads(message.data))
                self.received_at.append(time.perf_counter())
                self.arrived.set()

    async def send(self, kind: str, payload: Optional[dict[str, Any]] = None, request_id: Optional[str] = None) -> str:
        request_id = request_id or uuid.uuid4().hex
        await self.ws.send_str(orjson.dumps({"type": kind, "payload": payload or {}, "request_id": request_id}).decode())
        return request_id

    async def next(self, kind: Optional[str] = None, where: Callable[[dict[str, Any]], bool] = lambda f: True,
                   timeout: float = 15.0) -> dict[str, Any]:
        """The next frame (after those looked at) of type `kind` matching `where`."""
        deadline = time.monotonic() + timeout
        while True:
            while self.seen < len(self.frames):
                frame = self.frames[self.seen]
                self.seen += 1
                if (kind is None or frame["type"] == kind) and where(frame):
                    return frame
            left = deadline - time.monotonic()
            if left <= 0 or self.ws.closed and self.reader.done():
                raise AssertionError(f"no {kind or 'frame'} within {timeout} s; got {self.frames[-10:]}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


async def connect(session: aiohttp.ClientSession, base_url: str, token: str, chat_id: Optional[str] = None,
                  since: Optional[int] = None) -> Socket:
    params: dict[str, Any] = {"token": token}
    if chat_id is not None:
        params["chat_id"] = chat_id
    if since is not None:
        params["since"] = since
    ws = await session.ws_connect(f"{base_url}/api/v1/chat/ws/chat?{urlencode(params)}", heartbeat=30)
    socket = Socket(ws)
    connected = await socket.next()
    assert connected["type"] == "connected", connected
    return socket
