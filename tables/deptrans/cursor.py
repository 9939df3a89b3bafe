"""Cursors of the incremental cache feeds (`GET /internal/v1/id/updates` over
`deptrans-profiles`, `GET /internal/v1/status/updates` over `deptrans-session-statuses`).

A change is numbered by the record that carried it: its partition and offset in the
compacted topic. Offsets only grow within a partition and mean the same on every worker,
so a cursor holds, per partition, the offset of the next change to hand out: no cursor is
the beginning, and any worker that has read the topic at least as far answers the same
page (one that has read less answers fewer items, never other ones). Compaction only
removes a record once a later one of its key exists, so a reader that pages to the end
holds every key's latest value, having skipped only values already replaced.

`page` merges the partitions round-robin, one change from each in turn, starting at a
partition that the cursor itself chooses, so no partition waits behind another however
small the limit. The cursor is opaque to clients: base64url of a small JSON
(`{"v": 1, "f": feed, "p": {partition: next offset}}`), tagged with its feed so that a
cursor of one endpoint is refused by the other.
"""

from __future__ import annotations

import base64
import binascii
import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import orjson

__all__ = ["Change", "InvalidCursor", "MAX_CURSOR_CHARS", "Page", "decode_cursor", "encode_cursor", "page"]

MAX_CURSOR_CHARS = 16_384
_VERSION = 1
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_MAX_PARTITION = 100_000
_MAX_OFFSET = 2**63 - 1


class InvalidCursor(ValueError):
    """A cursor this service did not write (a 400); the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Change:
    """One record of a compacted topic: a key's new value (None: a tombstone)."""

    partition: int
    offset: int
    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[Change, ...]
    positions: dict[int, int]  # the next cursor: per partition, the offset of the next change
    more: bool  # changes are left after this page (ask again at once)


def encode_cursor(positions: Mapping[int, int], feed: str) -> str:
    """The opaque cursor for `positions` of the feed `feed`."""
    body = {"v": _VERSION, "f": feed, "p": {str(p): o for p, o in sorted(positions.items()) if o}}
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()


def decode_cursor(cursor: Optional[str], feed: str) -> dict[int, int]:
    """The positions a cursor of `feed` holds ({}: none given, the beginning), or InvalidCursor."""
    if not cursor:
        return {}
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor(f"cursor: longer than {MAX_CURSOR_CHARS} characters")
    if not _BASE64URL.match(cursor):
        raise InvalidCursor("cursor: not base64url (A-Z, a-z, 0-9, '-', '_')")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        raise InvalidCursor("cursor: not one this service wrote (undecodable)") from None
    if not isinstance(body, dict) or body.get("v") != _VERSION or not isinstance(body.get("p"), dict):
        raise InvalidCursor("cursor: not one this service wrote (unknown form or version)")
    if body.get("f") != feed:
        raise InvalidCursor(f"cursor: written for another feed ({body.get('f')!r}), not {feed!r}")
    positions: dict[int, int] = {}
    for partition, offset in body["p"].items():
        if not (partition.isascii() and partition.isdigit() and int(partition) <= _MAX_PARTITION):
            raise InvalidCursor(f"cursor: {partition!r} is not a partition")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= _MAX_OFFSET:
            raise InvalidCursor(f"cursor: partition {partition}: {offset!r} is not an offset")
        positions[int(partition)] = offset
    return positions


def page(changes_by_partition: Mapping[int, Sequence[Change]], positions: Mapping[int, int], limit: int) -> Page:
    """Up to `limit` changes after `positions`, and the positions after them. Each partition's
    changes must be in offset order (as read from the topic); a partition the cursor does not
    name is read from its beginning, one the changes do not name keeps its position."""
    if limit < 1:
        raise ValueError(f"limit: {limit} is not a positive number")
    lanes: list[tuple[int, Sequence[Change], int]] = []  # partition, its changes, the first to hand out
    for partition in sorted(changes_by_partition):
        changes = changes_by_partition[partition]
        first = bisect_left(changes, positions.get(partition, 0), key=_offset)
        if first < len(changes):
            lanes.append((partition, changes, first))
    if lanes:  # the cursor picks the first lane: successive pages start at different partitions
        turn = sum(positions.values()) % len(lanes)
        lanes = lanes[turn:] + lanes[:turn]
    items: list[Change] = []
    after = dict(positions)
    while lanes and len(items) < limit:
        left = []
        for index, (partition, changes, next_index) in enumerate(lanes):
            if len(items) == limit:
                left.extend(lanes[index:])
                break
            change = changes[next_index]
            items.append(change)
            after[partition] = change.offset + 1
            if next_index + 1 < len(changes):
                left.append((partition, changes, next_index + 1))
        lanes = left
    return Page(tuple(items), after, bool(lanes))


def _offset(change: Change) -> int:
    return change.offset
