"""Reference Faust workers for `make bench`: the framework's own speed on the same broker,
records and settings as the service.

`BENCH_MODE=bare`: an agent that only counts the records of `qapp-events`.
`BENCH_MODE=table`: an agent that also updates one RocksDB table per record (a count per key).
Both answer `GET /count` with `{"count": records seen, "first_at", "last_at"}` (when the
first and the last record were seen, epoch seconds), so a rate needs no polling. Run with
`python -m faust -A bench.baselines worker` and the service's environment variables.
"""

from __future__ import annotations

import os
import time

import faust
import orjson
from faust import web

from app.settings import get_settings

settings = get_settings()
MODE = os.environ.get("BENCH_MODE", "bare")

app = faust.App(
    f"{settings.app_id}-{MODE}",
    broker=settings.kafka_url,
    store="rocksdb://",
    datadir=str(settings.data_dir),
    web_host=settings.web_bind,
    web_port=settings.web_port,
    canonical_url=settings.canonical_url,
    topic_partitions=settings.partitions,
    key_serializer="raw",
    value_serializer="raw",
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=settings.commit_interval_s,
    producer_linger=settings.producer_linger_s,
    producer_max_batch_size=settings.producer_max_batch_size,
    web_in_thread=False,
)
topic = app.topic(settings.topic_qapp_events, key_serializer="raw", value_serializer="raw")
seen = 0
first_at = last_at = None


def saw_one() -> None:
    global seen, first_at, last_at
    seen += 1
    last_at = time.time()
    if first_at is None:
        first_at = last_at

if MODE == "table":
    counts = app.Table("bench-counts", partitions=settings.partitions, key_type=bytes, value_type=bytes)
    counts.key_serializer = counts.value_serializer = "raw"
    counts.changelog_topic.key_serializer = counts.changelog_topic.value_serializer = "raw"

    @app.agent(topic, concurrency=1)
    async def count_into_table(stream):
        async for event in stream.events():
            key = event.key or b"none"
            counts[key] = str(int(counts.get(key) or 0) + 1).encode()
            saw_one()

else:

    @app.agent(topic, concurrency=1)
    async def count(stream):
        async for _ in stream.events():
            saw_one()


@app.page("/count")
class Count(web.View):
    async def get(self, request: web.Request) -> web.Response:
        return self.bytes(orjson.dumps({"count": seen, "first_at": first_at, "last_at": last_at}),
                          content_type="application/json")
