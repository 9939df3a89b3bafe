"""A stand-in for `personal`, the service that keeps personal data behind opaque ids.

    POST /v1/driver_licenses/retrieve   {"id": str}  ->  200 {"id", "value"}
                                                         404 {"error": "not_found", ...}: an id starting "unknown"
                                                         400 the body is not {"id": non-empty str}

The licence number of an id is a function of it (`license_for`): ten digits, the first two
"77", so the tests and the KRT sandbox (which gives each licence its KRT ID) agree without
sharing a list. `GET /stats` says how many lookups were answered (the client caches them).

    python -m dev.personal [--port P]     (0: any free port; the URL is printed on start)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import signal
import sys
from typing import Any, Optional, Sequence

from aiohttp import web
from pydantic import BaseModel, Field

from dev.control import control_errors, read_body
from web.errors import json_error

__all__ = ["DEFAULT_PORT", "add_arguments", "license_for", "make_app", "main", "run"]

DEFAULT_PORT = 8095


def license_for(pd_id: str) -> str:
    """The licence number the stand-in keeps behind `pd_id`."""
    return "77" + f"{int(hashlib.sha256(pd_id.encode()).hexdigest(), 16) % 10**8:08d}"


class _Retrieve(BaseModel):
    id: str = Field(min_length=1, max_length=256)


def make_app() -> web.Application:
    stats = {"lookups": 0}

    async def retrieve(request: web.Request) -> web.Response:
        body = await read_body(request, _Retrieve)
        stats["lookups"] += 1
        if body.id.startswith("unknown"):
            return json_error(404, "no such id", code="not_found")
        return web.json_response({"id": body.id, "value": license_for(body.id)})

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application(middlewares=[control_errors])
    app.router.add_post("/v1/driver_licenses/retrieve", retrieve)
    app.router.add_get("/stats", get_stats)
    return app


async def _serve(host: str, port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    print(f"personal stand-in listening on http://{host}:{runner.addresses[0][1]}", flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(args: argparse.Namespace, settings: Any = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")


def run(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.personal", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
