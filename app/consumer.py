"""Faust's Kafka consumer, with the fetch wait we choose instead of its fixed 1.5 s.

aiokafka keeps at most one fetch request in flight per broker, and leaves out of it every
partition whose fetched records are still buffered. Faust builds the consumer with
`fetch_max_wait_ms=1500` (faust/transport/drivers/aiokafka.py): when a request leaves out a
partition, new records there wait until the broker answers the request, which, with nothing
new on the partitions it asked for, is after 1.5 s. Each hop of the pipeline can pay that
while the input is quiet (the maximum end-to-end latency of 1.8 s at 300 events/s;
bench/README.md). `CONSUMER_FETCH_MAX_WAIT_S` bounds the wait; its default stays Faust's
1.5 s until the failover race a shorter wait exposes is found (see app/settings.py).
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
