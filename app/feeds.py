"""Every partition of a topic read by every worker, outside any consumer group.

`TopicFollower` reads a topic from its beginning and hands each record to `on_record`
(on the event loop, in offset order per partition). When the broker goes away it starts
again from the offsets it had reached, so `on_record` sees each record once. `caught_up`
is set once it has read up to the ends the topic had when it started: a worker answering
from what it followed says so before then (`/internal/v1/*/updates` of deptrans read
compacted topics this way, so any worker pages through the same changes).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

from mode import Service

from app.partitioner import partition_of

__all__ = ["TopicFollower", "partitions_of"]

log = logging.getLogger(__name__)


class TopicFollower(Service):
    def __init__(self, topic: Callable[[], str], bootstrap: str, on_record: Callable[[Any], None],
                 from_end: bool = False, fetch_max_wait_ms: int = 50, only_key: Optional[str] = None,
                 **kwargs: Any) -> None:
        """`from_end`: only what comes after the start (a push feed); `caught_up` is then set
        once the ends are known, and after the broker comes back it goes on where it was."""
        super().__init__(**kwargs)
        self.topic = topic
        self.bootstrap = bootstrap
        self.on_record = on_record
        self.from_end = from_end
        # a fetch parked at the broker holds back the partitions it left out (those whose
        # records were not yet handed on when it was made) this long at most
        self.fetch_max_wait_ms = fetch_max_wait_ms
        # only the partition records keyed `only_key` go to (a feed written under one key):
        # a fetch then never waits at the broker on partitions that hold nothing
        self.only_key = only_key
        self.next_offsets: dict[int, int] = {}
        self.caught_up = asyncio.Event()

    @Service.task
    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer

        topic = self.topic()
        while not self.should_stop:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=self.fetch_max_wait_ms)
            try:
                await consumer.start()
                partitions = await partitions_of(consumer, topic)
                if self.only_key is not None:
                    partitions = [partitions[partition_of(self.only_key, len(partitions))]]
                consumer.assign(partitions)
                ends = {tp.partition: end for tp, end in (await consumer.end_offsets(partitions)).items()}
                for tp in partitions:
                    if tp.partition in self.next_offsets:
                        consumer.seek(tp, self.next_offsets[tp.partition])
                    elif self.from_end:  # the end as it is now (a lazy seek_to_end skips what comes before a fetch)
                        consumer.seek(tp, ends[tp.partition])
                        self.next_offsets[tp.partition] = ends[tp.partition]
                    else:
                        await consumer.seek_to_beginning(tp)
                self._check_caught_up(ends)
                while not self.should_stop:
                    batch = await consumer.getmany(timeout_ms=500)
                    for tp, records in batch.items():
                        for record in records:
                            self.on_record(record)
                            self.next_offsets[tp.partition] = record.offset + 1
                    if not self.caught_up.is_set():
                        self._check_caught_up(ends)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker away: go on from where it was once it is back
                log.warning("Following %s stopped (%s); starting again", topic, exc)
                await self.sleep(1.0)
            finally:
                await consumer.stop()

    def _check_caught_up(self, ends: dict[int, int]) -> None:
        if all(self.next_offsets.get(p, 0) >= end for p, end in ends.items() if end > 0):
            self.caught_up.set()


async def partitions_of(consumer: Any, topic: str) -> list[Any]:
    """Every partition of `topic` (waiting up to 30 s for it to exist)."""
    from aiokafka import TopicPartition

    for _ in range(60):
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.5)
    raise RuntimeError(f"topic {topic} not found")
