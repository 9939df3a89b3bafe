"""Where a key lives: Kafka's default partitioner (murmur2, as the Java client), remembered.

aiokafka's murmur2 is pure Python (several microseconds a key), and a stream sees the same
call ids, agents and queues again and again; so both our routing and the producer
(`producer_partitioner`) use this cached copy of it.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Optional, Sequence

from aiokafka.partitioner import murmur2

__all__ = ["key_partitioner", "partition_of"]


@lru_cache(maxsize=1 << 17)
def _positive_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` among `partitions`."""
    return _positive_hash(key.encode()) % partitions


def key_partitioner(key: Optional[bytes], all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """aiokafka's `DefaultPartitioner`, with the hash remembered."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_positive_hash(key) % len(all_partitions)]
