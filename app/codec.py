"""The one codec: orjson for every value, with tagged dataclasses on internal topics.

Internal topics and tables carry the frozen dataclasses of `tables/` as
`{"type": "<ClassName>", ...fields}`; `decode` turns them back into instances.
orjson serialises dataclasses natively, which keeps the hot path cheap.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import orjson
from faust.serializers import codecs

from tables.callcenter import calls, events, operators, queues, watermarks, windows

_TAG = "type"

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


def message_types() -> dict[str, type]:
    """Tag -> class of every message that may travel on an internal topic."""
    return _MESSAGE_TYPES


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes) -> Any:
    return orjson.loads(data)


def encode(message: Any) -> bytes:
    """A tagged dataclass as JSON bytes."""
    body = {_TAG: type(message).__name__}
    body.update({f.name: getattr(message, f.name) for f in dataclasses.fields(message)})
    return dumps(body)


class UndecodableMessage(ValueError):
    pass


def decode(data: bytes) -> Any:
    """The dataclass `encode` made; UndecodableMessage for anything else."""
    try:
        body = orjson.loads(data)
        cls = _MESSAGE_TYPES[body.pop(_TAG)]
        return cls(**body)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise UndecodableMessage(f"not an internal message: {type(exc).__name__}: {exc}") from None


class OrjsonCodec(codecs.Codec):
    """Faust codec `orjson`: plain JSON values (dicts, lists, numbers) for tables."""

    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


codecs.register("orjson", OrjsonCodec())
