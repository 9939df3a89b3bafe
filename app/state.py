"""Typed access to Faust tables: values are the frozen dataclasses of tables/, stored as
orjson bytes (orjson writes dataclasses natively, far faster than dict conversion)."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, Optional, TypeVar

import faust
import orjson

from app.codec import dumps

T = TypeVar("T")


class StateTable(Generic[T]):
    """`cached` keeps decoded states in memory, write-through: right for small tables of
    big, hot values (queues, operators), since each partition has one writer. The cache is
    dropped at every rebalance, when recovery may change the table underneath."""

    instances: list["StateTable"] = []

    def __init__(self, table: faust.Table, decode: Callable[[dict], T], cached: bool = False) -> None:
        self.table = table
        self.decode = decode
        self.cache: Optional[dict[str, T]] = {} if cached else None
        StateTable.instances.append(self)

    def forget(self) -> None:
        if self.cache is not None:
            self.cache.clear()

    @property
    def name(self) -> str:
        return self.table.name

    def get(self, key: str) -> Optional[T]:
        if self.cache is not None and key in self.cache:
            return self.cache[key]
        raw = self.table.get(key)
        state = None if raw is None else self.decode(orjson.loads(raw))
        if self.cache is not None and state is not None:
            self.cache[key] = state
        return state

    def put(self, key: str, state: T) -> None:
        self.table[key] = dumps(state)
        if self.cache is not None:
            self.cache[key] = state

    def delete(self, key: str) -> None:
        if self.cache is not None:
            self.cache.pop(key, None)
        if key in self.table:
            del self.table[key]

    def items(self) -> Iterator[tuple[str, T]]:
        """Every (key, state) of this worker's active partitions."""
        for key, raw in list(self.table.items()):
            key = key.decode() if isinstance(key, (bytes, bytearray)) else key
            cached = self.cache.get(key) if self.cache is not None else None
            yield key, cached if cached is not None else self.decode(orjson.loads(raw))

    def __len__(self) -> int:
        return len(self.table)
