"""The one codec: orjson for every value, with tagged dataclasses on internal topics.

A record of an internal topic is an envelope of many messages (app/batching.py): the
frozen dataclasses of `tables/` as `[["<ClassName>", {...fields}], ...]` (`pack`);
`unpack` turns them back into instances, each field checked against its annotation.
A domain registers the types it puts on internal topics (`register_types`, in its
`store.py`). orjson serialises dataclasses natively, which keeps the hot path cheap.
"""

from __future__ import annotations

import math
import typing
from enum import Enum
from typing import Any, Callable, Iterable

import orjson
from faust.serializers import codecs

__all__ = ["OrjsonCodec", "UndecodableMessage", "dumps", "loads", "pack", "register_types", "unpack"]


def _field_check(hint: Any) -> Callable[[Any], bool]:
    """Whether a JSON value may fill a field annotated `hint` (str, int, float, bool, Optional)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else hint
    if isinstance(base, type) and issubclass(base, Enum):
        values = frozenset(member.value for member in base)

        def ok(v: Any) -> bool:
            return type(v) is str and v in values
    elif base is float:
        def ok(v: Any) -> bool:
            t = type(v)
            return (t is float and math.isfinite(v)) or t is int
    elif base in (int, str, bool):
        def ok(v: Any) -> bool:
            return type(v) is base
    else:
        raise TypeError(f"no wire check for {hint!r}")
    if optional:
        return lambda v: v is None or ok(v)
    return ok


def _builder(cls: type) -> Callable[[Any], Any]:
    """Makes a `cls` from its JSON fields, after checking each field's type: a record
    someone wrote by hand is refused here, not as a crash deep in a rule."""
    hints = typing.get_type_hints(cls)
    checks = tuple((name, _field_check(hint)) for name, hint in hints.items())
    names = frozenset(name for name, _ in checks)
    enums = tuple((name, hint) for name, hint in hints.items() if isinstance(hint, type) and issubclass(hint, Enum))

    def build(fields: Any) -> Any:
        if type(fields) is not dict or fields.keys() != names:
            raise TypeError(f"{cls.__name__} needs exactly the fields {sorted(names)}")
        for name, ok in checks:
            if not ok(fields[name]):
                raise TypeError(f"{cls.__name__}.{name} may not be {fields[name]!r}"[:200])
        if enums:
            fields = {**fields, **{name: kind(fields[name]) for name, kind in enums}}
        return cls(**fields)

    return build


_MESSAGE_TYPES: dict[str, Callable[[Any], Any]] = {}  # class name -> checked builder


def register_types(types: Iterable[type]) -> None:
    """Let another domain put its dataclasses on internal topics."""
    for cls in types:
        _MESSAGE_TYPES[cls.__name__] = _builder(cls)


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
        envelope = orjson.loads(data)
        if type(envelope) is not list or not envelope:
            raise ValueError("an envelope is a non-empty JSON list")
        return [_MESSAGE_TYPES[tag](fields) for tag, fields in envelope]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UndecodableMessage(f"not an envelope of internal messages: {type(exc).__name__}: {exc}") from None


class OrjsonCodec(codecs.Codec):
    """Faust codec `orjson`: plain JSON values (dicts, lists, numbers) for tables."""

    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


codecs.register("orjson", OrjsonCodec())
