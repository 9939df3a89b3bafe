"""A compacted topic held in memory as the cache feeds page it (cursor.py): per partition, the
latest change of each key, in offset order.

`add` takes the records as they are read. A key's new record supersedes its old one, which
stays in the partition's list (a reader past it never sees it; one before it gets the old
value, then the new: each a change of its own, never one twice) until the list holds as many
superseded records as live ones; then it is rebuilt from the live ones, in offset order
(the dict of live changes keeps that order: a key written again moves to its end).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tables.deptrans.cursor import Change

__all__ = ["CompactedFeed"]


class _Partition:
    __slots__ = ("changes", "latest", "next_offset")

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.latest: dict[str, Change] = {}
        self.next_offset = 0


class CompactedFeed:
    def __init__(self, min_rebuild: int = 1024) -> None:
        self.partitions: dict[int, _Partition] = {}
        self.min_rebuild = min_rebuild

    def add(self, partition: int, offset: int, key: str, value: Any) -> None:
        """The record at `offset` of `partition` (`value` None: a tombstone). A record at or
        before one already added (a reader starting again) changes nothing."""
        lane = self.partitions.get(partition)
        if lane is None:
            lane = self.partitions[partition] = _Partition()
        if offset < lane.next_offset:
            return
        change = Change(partition, offset, key, value)
        lane.latest.pop(key, None)
        lane.latest[key] = change
        lane.changes.append(change)
        lane.next_offset = offset + 1
        if len(lane.changes) > max(self.min_rebuild, 2 * len(lane.latest)):
            lane.changes = list(lane.latest.values())

    def changes_by_partition(self) -> Mapping[int, Sequence[Change]]:
        return {partition: lane.changes for partition, lane in self.partitions.items()}

    def get(self, key: str, partition: int) -> Any:
        """The latest value of `key` (None: none, or a tombstone)."""
        lane = self.partitions.get(partition)
        change = None if lane is None else lane.latest.get(key)
        return None if change is None else change.value

    def read_to(self) -> dict[int, int]:
        """Per partition, the offset of the next record to read (what this feed has seen)."""
        return {partition: lane.next_offset for partition, lane in self.partitions.items()}

    def __len__(self) -> int:
        return sum(len(lane.latest) for lane in self.partitions.values())
