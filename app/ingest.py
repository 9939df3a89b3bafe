"""`python -m app ingest queue-log PATH [--follow] [--speed X]`: a queue_log file into `qapp-events`.

Lines are sent as they are (the service decodes and dead-letters them), keyed by call
id, or by agent for call-less events, so each call and each agent stays in order.

Success means Kafka acknowledged every line. A line Kafka never acknowledged (the broker
away longer than `INGEST_DELIVERY_TIMEOUT_S`) ends the ingest with exit code 1 and says
so: the upstream sends the file again, and lines the service already has count once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import AsyncIterator, Optional

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from app.delivery import Deliveries, NotDelivered
from app.settings import Settings

__all__ = ["add_arguments", "ingest_queue_log", "main", "read_lines", "record_key"]

NONE = "NONE"
PROGRESS_EVERY_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    qlog = sub.add_parser("queue-log", help="an Asterisk queue_log file (pipe format, Asterisk 1.4-22)")
    qlog.add_argument("path", type=Path, metavar="PATH")
    qlog.add_argument("--follow", action="store_true", help="keep reading appended lines, like tail -F")
    qlog.add_argument("--speed", type=float, default=None, metavar="X",
                      help="replay with the original pacing sped up X times (default: as fast as possible)")
    qlog.add_argument("--quiet", action="store_true", help="no progress line")


def record_key(line: str) -> Optional[bytes]:
    """Call id, or agent for call-less events; None when the line has no such columns."""
    parts = line.split("|", 5)
    if len(parts) < 5:
        return None
    callid, agent = parts[1].strip(), parts[3].strip()
    if callid and callid != NONE:
        return callid.encode()
    if agent and agent != NONE:
        return agent.encode()
    return None


def event_time(line: str) -> Optional[float]:
    try:
        return float(line.split("|", 1)[0])
    except ValueError:
        return None


async def read_lines(path: Path, follow: bool) -> AsyncIterator[str]:
    """Lines of `path`; with `follow`, also those appended later, across rotation/truncation."""
    while not path.exists():
        if not follow:
            raise FileNotFoundError(f"no such file: {path}")
        await asyncio.sleep(0.5)
    handle = path.open("r", encoding="utf-8", errors="surrogateescape", newline="")
    inode = os.fstat(handle.fileno()).st_ino
    pending = ""
    try:
        while True:
            chunk = handle.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending.rstrip("\r\n")
                    pending = ""
                continue
            if not follow:
                if pending:
                    yield pending.rstrip("\r\n")
                return
            await asyncio.sleep(0.2)
            try:
                current = path.stat()
            except FileNotFoundError:
                continue  # rotated away; the new file will appear
            if current.st_ino != inode or current.st_size < handle.tell():
                handle.close()
                handle = path.open("r", encoding="utf-8", errors="surrogateescape", newline="")
                inode = os.fstat(handle.fileno()).st_ino
    finally:
        handle.close()


class Progress:
    def __init__(self, path: Path, quiet: bool) -> None:
        self.total = path.stat().st_size if path.exists() else 0
        self.quiet = quiet
        self.started = self.last = time.monotonic()
        self.lines = self.bytes = 0

    def step(self, line: str) -> None:
        self.lines += 1
        self.bytes += len(line) + 1
        now = time.monotonic()
        if not self.quiet and now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.show(now)

    def show(self, now: float, end: str = "\r") -> None:
        rate = self.lines / max(now - self.started, 1e-9)
        share = f" {min(100.0, 100.0 * self.bytes / self.total):5.1f}%" if self.total else ""
        sys.stderr.write(f"ingest: {self.lines} lines{share}, {rate:,.0f} lines/s{end}")
        sys.stderr.flush()


async def ingest_queue_log(settings: Settings, path: Path, follow: bool, speed: Optional[float], quiet: bool) -> int:
    if speed is not None and speed <= 0:
        raise SystemExit("--speed must be a positive number")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=10, acks="all",
                                max_batch_size=256 * 1024,
                                request_timeout_ms=int(settings.ingest_delivery_timeout_s * 1000))
    await producer.start()
    progress = Progress(path, quiet or follow)
    deliveries = Deliveries()
    first_event: Optional[float] = None
    wall_start = time.monotonic()
    try:
        async for line in read_lines(path, follow):
            if not line.strip():
                continue
            if speed is not None:
                t = event_time(line)
                if t is not None:
                    first_event = t if first_event is None else first_event
                    delay = (t - first_event) / speed - (time.monotonic() - wall_start)
                    if delay > 0:
                        await asyncio.sleep(delay)
            if deliveries.failed:
                break  # what follows would wait for the same broker: the upstream sends it all again
            deliveries.watch(await producer.send(settings.topic_qapp_events, key=record_key(line),
                                                 value=line.encode("utf-8", "surrogateescape")))
            progress.step(line)
        await producer.flush()
    finally:
        await producer.stop()
    failure = deliveries.failure(f"of {progress.lines} lines sent were")
    if failure is not None:
        raise NotDelivered(f"{failure}; send the file again (lines the service already has count once)")
    if not quiet:
        progress.show(time.monotonic(), end="\n")
    return progress.lines


def main(args: argparse.Namespace, settings: Settings) -> int:
    try:
        sent = asyncio.run(ingest_queue_log(settings, args.path, args.follow, args.speed, args.quiet))
    except FileNotFoundError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    except NotDelivered as exc:
        print(f"\ningest: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:  # cannot connect, or the producer's buffer stayed full
        print(f"\ningest: Kafka at {settings.kafka_bootstrap}: {type(exc).__name__}: {exc}; "
              "send the file again (lines the service already has count once)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0 if sent >= 0 else 1
