"""A driver's KRT ID: the secret, and what may be said of it.

The seed calls the ID a secret not to be shown or sent without need. It is kept on an
internal topic only the service reads (`<APP_ID>-deptrans-ids`, compacted, by licence pd
id); the public `deptrans-profiles` says only that the licence has one (`has_id`) and when
it was set, which is all the caches downstream need.
"""

from __future__ import annotations

from typing import Any, Optional

import orjson

__all__ = ["has_id", "private_record", "public_record"]


def private_record(pd_id: str, deptrans_id: str, at: float) -> bytes:
    """The value on the internal topic: the ID itself."""
    return orjson.dumps({"driver_license_pd_id": pd_id, "deptrans_id": deptrans_id, "updated_at": at})


def public_record(pd_id: str, at: float) -> bytes:
    """The value on `deptrans-profiles`: that the licence has a verified ID, never the ID."""
    return orjson.dumps({"driver_license_pd_id": pd_id, "has_id": True, "updated_at": at})


def has_id(record: Optional[dict[str, Any]]) -> bool:
    """Whether a `deptrans-profiles` value says the licence has an ID (a record of a version
    that still carried the ID itself says so by carrying it)."""
    if not isinstance(record, dict):
        return False
    return record.get("has_id") is True or bool(record.get("deptrans_id"))
