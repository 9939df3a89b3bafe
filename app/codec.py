"""The one codec: orjson for every value, with tagged dataclasses on internal topics.

A record of an internal topic is an envelope of many messages (app/batching.py): the
frozen dataclasses of `tables/` as `[["<ClassName>", {...fields}], ...]` (`pack`);
`unpack` turns them back into instances. orjson serialises dataclasses natively, which
keeps the hot path cheap.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson
from faust.serializers import codecs

from tables.callcenter import calls, events, operators, queues, watermarks, windows

_MESSAGE_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        events.CallEntered,
        events.CallRingNoAnswer,
        events.CallConnected,
        events.CallCompleted,
        events.CallTransferred,
        events.CallLeftUnanswered,
        events.MemberAdded,
        events.MemberRemoved,
        events.MemberPaused,
        events.AgentLoggedIn,
        calls.WaitingChange,
        calls.CallSwept,
        operators.MemberChange,
        operators.OperatorSwept,
        watermarks.StreamMark,
        windows.WindowFact,
    )
}


def register_types(types: Iterable[type]) -> None:
    """Let another domain put its dataclasses on internal topics."""
    for cls in types:
        _MESSAGE_TYPES[cls.__name__] = cls


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes) -> Any:
    return orjson.loads(data)


class UndecodableMessage(ValueError):
    pass


def pack(messages: Iterable[Any]) -> bytes:
    """Tagged dataclasses as one JSON list."""
    return orjson.dumps([(type(m).__name__, m) for m in messages])


def unpack(data: bytes) -> list[Any]:
    """The messages `pack` made; UndecodableMessage for anything else."""
    try:
        return [_MESSAGE_TYPES[tag](**fields) for tag, fields in orjson.loads(data)]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UndecodableMessage(f"not an envelope of internal messages: {type(exc).__name__}: {exc}") from None


class OrjsonCodec(codecs.Codec):
    """Faust codec `orjson`: plain JSON values (dicts, lists, numbers) for tables."""

    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


codecs.register("orjson", OrjsonCodec())
