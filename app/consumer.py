"""Faust's Kafka consumer, with the fetch wait we choose instead of its fixed 1.5 s.

aiokafka keeps at most one fetch request in flight per broker, and leaves out of it every
partition whose fetched records are still buffered. Faust builds the consumer with
`fetch_max_wait_ms=1500` (faust/transport/drivers/aiokafka.py): when a request leaves out a
partition, new records there wait until the broker answers the request, which, with nothing
new on the partitions it asked for, is after 1.5 s. Each hop of the pipeline can pay that
while the input is quiet (the maximum end-to-end latency of 1.8 s at 300 events/s;
bench/README.md). `CONSUMER_FETCH_MAX_WAIT_S` bounds the wait (0.05 s by default; a shorter
wait once exposed the takeover race `perform_seek` below closes).

It also makes the seek to the committed offsets that ends every rebalance the last word
(`TunedConsumer.perform_seek`): without that, a takeover could commit records nobody processed.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from app.settings import get_settings

__all__ = ["TunedConsumer", "TunedConsumerThread"]


class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read when the consumer starts (its fetcher is made then): not started yet here
        consumer._fetch_max_wait_ms = int(get_settings().consumer_fetch_max_wait_s * 1000)
        return consumer


class TunedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Seek every partition to its committed offset, with the flow stopped.

        Faust ends a rebalance's recovery (faust/tables/recovery.py, `on_recovery_completed`)
        by resuming the stream partitions, then awaiting this seek, then clearing every stream
        buffer and raw input (`flow_control.resume()`) and resuming the flow. But the flow is
        already on: recovery turned it on to read the changelogs. So records fetched from the
        partitions just resumed go on reaching the buffers while the seek waits for the
        broker; the seek then sets the read offsets back to the committed ones, the next
        record delivered looks like a gap that Faust counts as processed (`_add_gap`), and the
        buffers holding the records before it are cleared: never processed, yet committed.
        Seen on a takeover: `qapp-events` 129..1080 of a partition committed, never routed.

        With the flow stopped the fetcher hands nothing over until Faust resumes it, just after
        it cleared the buffers (`consumer.resume_flow()`): whatever reached them before the
        seek is read again from the committed offset. Faust stops the flow the same way for a
        rebalance; when it calls this seek itself because the flow is stopped (`getmany`), this
        changes nothing.

        Then every standby changelog partition is sought back to just after the last record
        the recovery took of it (`_reseek_standbys`)."""
        self.stop_flow()
        await super().perform_seek()
        await self._reseek_standbys()

    async def _reseek_standbys(self) -> None:
        """Standby partitions read again from just after the last record recovery took.

        Faust resumes the standby changelog partitions before it ends the recovery
        (faust/tables/recovery.py), and ends it with `flow_control.resume()`, which clears the
        queue of changelog records (`TableManager.changelog_queue`, `clear_on_resume=True`):
        whatever the fetcher delivered to it meanwhile is gone, and the fetch position is past
        it. A standby then starts some records in, its persisted offset as if it had them, and
        a worker it is promoted on (or a read from it) lacks those keys for good (seen on the
        cluster, 3 -> 4 workers: the new worker's standby of ivr-rules began at offset 12, and
        an acknowledged IVR hold was answered `no_rule`). With the flow stopped here, nothing
        is delivered until Faust resumes it, just after that clear."""
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]  # TableManager has it, its type does not
        taken = recovery.standby_offsets  # tp -> offset of the last record the recovery took (-1: none)
        again = {tp: max(0, (taken.get(tp) if taken.get(tp) is not None else -1) + 1) for tp in recovery.standby_tps}
        if again:
            await self.seek_wait(again)
