"""Typed access to Faust tables: values are the frozen dataclasses of tables/, stored as
orjson bytes (orjson writes dataclasses natively, far faster than dict conversion)."""

from __future__ import annotations

import sys
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

import faust
import orjson

from app.changelog import changelogs
from app.codec import dumps

__all__ = ["StateTable", "UNBOUNDED", "items_in_partition"]

T = TypeVar("T")
UNBOUNDED = sys.maxsize
_ABSENT = object()  # cached: the key has no value


class StateTable(Generic[T]):
    """A table of one kind of state. `cache_keys` keeps up to that many decoded states in
    memory, write-through (least recently used dropped first): right for hot values read
    more often than written, since each partition has one writer. The cache is dropped at
    every rebalance, when recovery may change the table underneath (`generation` counts those),
    and remembers absent keys too (a status view asks for many windows that never were)."""

    instances: list["StateTable"] = []

    def __init__(self, table: faust.Table, decode: Callable[[object], T], partition_of: Callable[[str], int],
                 cache_keys: int = 0) -> None:
        self.table = table
        self.decode = decode
        self.partition_of = partition_of
        self.cache_keys = cache_keys
        self.cache: Optional[dict[str, Any]] = {} if cache_keys else None  # T, or _ABSENT
        self.keys: dict[int, set[str]] = {}  # partition -> its keys, once listed (see `items_in`)
        self.generation = 0
        StateTable.instances.append(self)

    def forget(self) -> None:
        if self.cache is not None:
            self.cache.clear()
        self.keys.clear()
        self.generation += 1

    @property
    def name(self) -> str:
        return self.table.name

    def get(self, key: str) -> Optional[T]:
        cache = self.cache
        if cache is not None:
            state = cache.pop(key, None)
            if state is not None:
                cache[key] = state  # most recently used last
                return None if state is _ABSENT else state
        state = self.stored(key)
        if cache is not None:
            self._remember(key, _ABSENT if state is None else state)
        return state

    def stored(self, key: str) -> Optional[T]:
        """What the store holds for `key`, past the cache: the read for partitions this worker
        keeps as a standby replica, which Faust updates from the changelog underneath any cache."""
        raw = changelogs.read(self.table, key.encode())
        return None if raw is None else self.decode(orjson.loads(raw))

    def put(self, key: str, state: T) -> None:
        changelogs.write(self.table, key.encode(), dumps(state))
        if self.cache is not None:
            self.cache.pop(key, None)
            self._remember(key, state)
        if self.keys:
            known = self.keys.get(self.partition_of(key))
            if known is not None:
                known.add(key)

    def delete(self, key: str) -> None:
        if self.cache is not None:
            self.cache.pop(key, None)
            self._remember(key, _ABSENT)
        if self.keys:
            self.keys.get(self.partition_of(key), set()).discard(key)
        raw_key = key.encode()
        if changelogs.read(self.table, raw_key) is not None:
            changelogs.write(self.table, raw_key, None)

    def _remember(self, key: str, state: object) -> None:
        cache = self.cache
        if cache is None:
            return
        cache[key] = state
        if len(cache) > self.cache_keys:
            del cache[next(iter(cache))]

    def items_in(self, partition: int) -> Iterator[tuple[str, T]]:
        """Every (key, state) of one partition. The first call after a rebalance reads the
        table's keys; later calls know them (puts and deletes keep the list)."""
        keys = self.keys.get(partition)
        if keys is None:
            listed: dict[int, set[str]] = {p: set() for p in range(max(self.table.partitions or 0, partition + 1))}
            for key in self._raw_keys():
                listed.setdefault(self.partition_of(key), set()).add(key)
            for p, found in listed.items():
                self.keys.setdefault(p, found)
            keys = self.keys[partition]
        for key in list(keys):
            state = self.get(key)
            if state is not None:
                yield key, state

    def _raw_keys(self) -> Iterator[str]:
        for key in list(self.table.keys()):
            yield key.decode() if isinstance(key, (bytes, bytearray)) else key

    def items(self) -> Iterator[tuple[str, T]]:
        """Every (key, state) of this worker's active partitions."""
        if self.cache is not None:
            for partition in range(self.table.partitions or 0):
                yield from self.items_in(partition)
            return
        for key, raw in list(self.table.items()):
            key = key.decode() if isinstance(key, (bytes, bytearray)) else key
            yield key, self.decode(orjson.loads(raw))

    def __len__(self) -> int:
        return len(self.table)


def items_in_partition(table, partition: int, partition_of) -> Iterator[tuple[str, Any]]:
    """The (key, state) pairs of one partition of a StateTable (its keys were produced by key)."""
    for key, state in table.items():
        if partition_of(key) == partition:
            yield key, state
