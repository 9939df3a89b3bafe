"""Dead letters: a rejected record's original bytes, where it came from and why (every domain).

A letter always fits where the record did: it carries the first `DEAD_LETTER_PREFIX_BYTES`
of the value with its size and SHA-256, and building one never raises.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from typing import Any, Optional

import faust

from app import codec, metrics

__all__ = ["DEAD_LETTER_PREFIX_BYTES", "dead_letter", "dead_letter_body", "dead_letter_key"]

log = logging.getLogger(__name__)


async def dead_letter(topic: faust.TopicT, message: Any, reason: str) -> None:
    """Send the original bytes and where they came from to `dead-letters`; count it."""
    metrics.events_out.labels(topic.get_topic_name()).inc()
    await topic.send(key=dead_letter_key(message), value=dead_letter_body(message, reason))


def dead_letter_key(message: Any) -> Optional[bytes]:
    """The key a dead letter is sent with: the record's own, at most 1 kB of it."""
    key = message.key
    if key is None:
        return None
    return (bytes(key) if isinstance(key, (bytes, bytearray, memoryview)) else str(key).encode("utf-8", "replace"))[:1024]


DEAD_LETTER_PREFIX_BYTES = 16 * 1024  # of the original value, in a dead letter (with its size and digest)


def dead_letter_body(message: Any, reason: str) -> bytes:
    """The dead letter of `message`: why, where it came from, its size and SHA-256, and its
    first `DEAD_LETTER_PREFIX_BYTES` (so a letter always fits where the record did); counted."""
    try:
        body = _letter(message, reason)
    except Exception as exc:  # the dead-letter path never stops a stream
        log.exception("dead letter of a record that resists description")
        body = {"source_topic": str(getattr(message, "topic", "")), "partition": getattr(message, "partition", None),
                "offset": getattr(message, "offset", None), "reason": reason, "note": f"letter incomplete: {exc!r}",
                "rejected_at": time.time()}
    topic = str(body.get("source_topic", ""))
    metrics.events_rejected.labels(topic, reason.split(":", 1)[0][:40]).inc()
    log.warning("dead-lettered", extra={"topic": topic, "partition": body.get("partition"),
                                         "offset": body.get("offset"), "reason": reason})
    return codec.dumps(body)


def _letter(message: Any, reason: str) -> dict:
    raw = message.value
    if raw is None:
        value: Optional[bytes] = None
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        value = bytes(raw)
    else:
        value = str(raw).encode("utf-8", "replace")
    prefix = value[:DEAD_LETTER_PREFIX_BYTES] if value is not None else None
    text: Optional[str] = None
    if value is not None and prefix is not None:
        try:
            text = prefix.decode("utf-8")
        except UnicodeDecodeError as exc:
            # a prefix cut inside a character is still text up to the cut
            text = prefix[: exc.start].decode("utf-8") if exc.start >= len(prefix) - 3 and len(value) > len(prefix) else None
    key = dead_letter_key(message)
    return {
        "source_topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp": message.timestamp,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "reason": reason,
        "value": text,
        "value_b64": base64.b64encode(prefix).decode() if prefix is not None else None,
        "value_size": len(value) if value is not None else None,
        "value_sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
        "value_truncated": value is not None and prefix is not None and len(value) > len(prefix),
        "rejected_at": time.time(),
    }
