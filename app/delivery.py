"""Every record sent is either acknowledged by Kafka or stops what sent it.

A Kafka producer's `flush` waits for every record in flight but never says which ones
Kafka refused (a broker away longer than the producer's timeout, a record too large): the
answer is only on each record's delivery future, which nobody awaits. Unwatched, a failed
output is lost while the offsets of the inputs that made it are committed.

- `Deliveries` watches delivery futures and keeps the first failure (`ingest` uses it to
  exit with an error the upstream can act on);
- `GuardedProducer` watches every record a worker sends (our outboxes, Faust's table
  changelogs, dead letters: all go through `Producer.send`), counts a failure in
  `/metrics`, logs it and crashes the worker; its `flush` also waits for the changelog
  writes still queued in Faust's buffer (whose own drain gives up after 0.1 s idle);
- `GuardedConsumer` refuses to commit once a delivery failed. Faust commits after the
  producer's `flush`, which returns only when every earlier delivery future is done, so a
  commit never covers an input whose output Kafka refused: the restarted worker reads it
  again (each window fact still counts once: the ledger).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

from faust.transport.drivers import aiokafka as faust_aiokafka

from app import metrics
from app.batching import wake_stages
from app.changelog import changelogs
from app.consumer import TunedConsumer

__all__ = ["Deliveries", "GuardedConsumer", "GuardedProducer", "GuardedTransport", "NotDelivered"]

log = logging.getLogger(__name__)


class NotDelivered(Exception):
    """Kafka did not acknowledge some of the records sent."""


class Deliveries:
    """The outcome of every delivery future handed to `watch`."""

    def __init__(self, on_failure: Optional[Callable[[BaseException], None]] = None) -> None:
        self.failed = 0
        self.first_error: Optional[BaseException] = None
        self.on_failure = on_failure

    def watch(self, delivery: "asyncio.Future[Any]") -> None:
        delivery.add_done_callback(self._done)

    def _done(self, delivery: "asyncio.Future[Any]") -> None:
        error = asyncio.CancelledError() if delivery.cancelled() else delivery.exception()
        if error is None:
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = error
        if self.on_failure is not None:
            self.on_failure(error)

    def failure(self, what: str = "records") -> Optional[NotDelivered]:
        """None while every delivery succeeded (or is pending); else what failed."""
        if not self.failed:
            return None
        return NotDelivered(f"{self.failed} {what} not acknowledged by Kafka "
                            f"(first: {type(self.first_error).__name__}: {self.first_error})")


class GuardedProducer(faust_aiokafka.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliveries = Deliveries(on_failure=self._on_failure)
        changelogs.producer = self

    async def send(self, topic: str, key: Any, value: Any, partition: Any, timestamp: Any, headers: Any,
                   *, transactional_id: Optional[str] = None) -> Any:
        delivery = await super().send(topic, key, value, partition, timestamp, headers,
                                      transactional_id=transactional_id)
        self.deliveries.watch(delivery)  # type: ignore[arg-type]
        return delivery

    async def flush(self) -> None:
        """Every record queued when called is acknowledged before this returns.

        Faust commits after `producer.flush()`, which first drains its buffer of table
        changelog writes (`ProducerBuffer.flush`); but that drain gives up as soon as 0.1 s
        pass without a send (`flush_atmost`), so a CPU-starved worker could commit inputs
        whose changelog writes were still queued, and a kill then loses them. This waits for
        each one queued at the call (their futures resolve once Kafka has them; a refusal
        raises, and the commit does not happen)."""
        await changelogs.flush()  # the table writes of our stages (app/changelog.py)
        queued = list(self.buffer.pending._queue)  # type: ignore[attr-defined]  # asyncio.Queue's deque
        await super().flush()
        if queued:
            await asyncio.gather(*queued)
            if self._producer is not None:
                await self._producer.flush()  # and whatever Faust's buffer task had in hand before them

    async def send_answered(self, topic: str, key: Optional[bytes], value: Optional[bytes], timeout_s: float,
                            partition: Optional[int] = None, headers: Any = None) -> Any:
        """A record somebody waits for (an HTTP command): sent, and its acknowledgement awaited
        for at most `timeout_s`. A refusal or a timeout is raised to the caller, who answers
        for it; it is no stream output, so it neither stops the worker nor refuses commits."""
        delivery = await super().send(topic, key, value, partition, None, headers)
        return await asyncio.wait_for(asyncio.shield(delivery), timeout_s)

    def _on_failure(self, error: BaseException) -> None:
        metrics.delivery_failures.inc()
        failure = self.deliveries.failure()
        if failure is not None and self.deliveries.failed == 1:  # one line and one crash, not one per record
            log.error("Kafka refused an output record (%s: %s): the worker stops before committing "
                      "the inputs that made it; restarted, it reads them again", type(error).__name__, error)
            asyncio.ensure_future(self.app.crash(failure))


class GuardedConsumer(TunedConsumer):
    def ack(self, message: Any) -> bool:
        """Only a message a stream or raw input took (`tracked`) counts as processed.

        Faust's stream acknowledges the records it skips because the flow is stopped (a
        rebalance under way) or they belong to an earlier generation (faust/streams.py,
        `_py_aiter`: "We want to ack the filtered out message"), though nobody processed
        them; the commit that ends the rebalance then covers them, and a worker that keeps
        the partition goes on after them: lost (seen on a three-broker cluster, one call's
        window facts on cc-queues). Unacknowledged, they are read again after the rebalance."""
        if not message.tracked:
            return False
        if message.generation_id != self.app.consumer_generation_id:
            # taken before a rebalance, finished after it: its partition was read again from
            # the commit (by this worker or another), so its offset is no longer this
            # generation's to count (the first run of offsets acknowledged is what commits)
            return False
        return super().ack(message)

    async def wait_empty(self) -> None:
        wake_stages()  # a batch held for more is let go: the wait below needs its acks
        await super().wait_empty()

    async def _commit(self, offsets: Any) -> bool:
        deliveries = getattr(self.app.producer, "deliveries", None)
        failure = deliveries.failure() if deliveries is not None else None
        if failure is not None:
            log.error("Commit refused: %s", failure)
            return False
        return await super()._commit(offsets)


class GuardedTransport(faust_aiokafka.Transport):
    Producer = GuardedProducer
    Consumer = GuardedConsumer
