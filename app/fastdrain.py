"""Faust's consumer, less its fixed cost per record: the one place we lean on Faust internals.

Faust hands every fetched record to its streams with
`await self.wait_first(on_message(record), self.suspend_flow.wait())`
(faust/transport/consumer.py, `Consumer._drain_messages`), so that a delivery blocked by
a full stream buffer, flow control (a rebalance) or a full producer buffer gives way
when the flow is suspended or the consumer stops. That makes four tasks and an
`asyncio.wait` per record: a fifth of the worker's time in the profile of a replay
(bench/README.md, "Profile"), as much as our own rules.

`FastDrainConsumer.wait_first` takes that call apart only when the delivery cannot
block: the flow is active, nothing stops, no stream buffer is full, the producer buffer
is below its mark and the conductor's callback map is not being rebuilt. Then
`on_message` runs to its end without suspending, so awaiting it directly is what
`wait_first` would have done, minus the tasks. In every other case, Faust's own
`wait_first` runs. `tests/integration` (rebalances, killed workers) and
`tests/unit/test_fastdrain.py` hold it to that.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mode.services import WaitResults

from app.delivery import GuardedConsumer, GuardedTransport

__all__ = ["FastDrainConsumer", "FastDrainTransport", "delivery_cannot_block"]

_SUSPEND_WAIT = asyncio.Event.wait.__code__  # the code of `self.suspend_flow.wait()`


class FastDrainConsumer(GuardedConsumer):
    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if timeout is None and len(coros) == 2:
            deliver, suspend_wait = coros
            if getattr(suspend_wait, "cr_code", None) is _SUSPEND_WAIT and asyncio.iscoroutine(deliver) \
                    and delivery_cannot_block(self):
                suspend_wait.close()  # never awaited: it would only have said "suspended"
                return WaitResults([deliver], [await deliver], False)
        return await super().wait_first(*coros, timeout=timeout)


def delivery_cannot_block(consumer: Any) -> bool:
    """The conductor's `on_message` will run to its end without waiting (see above)."""
    app = consumer.app
    if consumer.should_stop or consumer.suspend_flow.is_set() or not consumer.flow_active:
        return False
    if not app.flow_control.is_active():
        return False
    buffer = app.producer.buffer
    if buffer.pending.qsize() > buffer.max_messages:  # `buffer.size`, less its settings lookups
        return False
    conductor = app.topics
    if conductor._tp_to_callback_lock.locked():
        return False
    queues = getattr(conductor, "stream_queues", None)  # RawInputConductor keeps the list
    if queues is None:
        queues = [channel.queue for channels in conductor._topic_name_index.values() for channel in channels]
    for queue in queues:
        if queue.full():
            return False
    return True


class FastDrainTransport(GuardedTransport):
    Consumer = FastDrainConsumer
