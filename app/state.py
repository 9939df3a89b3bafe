"""Typed access to Faust tables: values are the frozen dataclasses of tables/, stored as
orjson bytes (orjson writes dataclasses natively, far faster than dict conversion)."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, Optional, TypeVar

import faust
import orjson

from app.codec import dumps

T = TypeVar("T")


class StateTable(Generic[T]):
    def __init__(self, table: faust.Table, decode: Callable[[dict], T]) -> None:
        self.table = table
        self.decode = decode

    @property
    def name(self) -> str:
        return self.table.name

    def get(self, key: str) -> Optional[T]:
        raw = self.table.get(key)
        return None if raw is None else self.decode(orjson.loads(raw))

    def put(self, key: str, state: T) -> None:
        self.table[key] = dumps(state)

    def delete(self, key: str) -> None:
        if key in self.table:
            del self.table[key]

    def items(self) -> Iterator[tuple[str, T]]:
        """Every (key, state) of this worker's active partitions."""
        for key, raw in list(self.table.items()):
            yield (key.decode() if isinstance(key, (bytes, bytearray)) else key), self.decode(orjson.loads(raw))

    def __len__(self) -> int:
        return len(self.table)
