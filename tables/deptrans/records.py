"""What the KRT domain's input topics carry, checked, as the typed messages its rules take.
Bad records are `MalformedRecord`s (dead letters), whose message names the field at fault.

    contractor-status  {"park_id", "driver_id", "status", "time"}
                       a driver's status changed; status: online | busy | offline (any
                       case, spaces around ignored)
    driver-positions   {"park_id", "driver_id", "lat", "lon", "time"}
                       the trackstory's latest position of a driver
    driver-profiles    compacted, keyed "park_id_driver_id": {"park_id"?, "driver_id"?,
                       "driver_license_pd_id"?, "categories": [...]}; no value (a
                       tombstone): the profile is gone

`time` is epoch seconds or an ISO 8601 time with its offset. The topics are other
services', so fields this service does not read are ignored. A park id holds no "_": the
driver key is "park_id_driver_id" (drivers.driver_key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional, Union

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from app.records import record_model
from tables.deptrans.drivers import (
    DriverStatus,
    PositionReported,
    Profile,
    ProfileChanged,
    StatusChanged,
    driver_key,
    normalise_category,
    split_driver_key,
)

__all__ = [
    "ContractorStatusRecord", "DriverId", "MalformedRecord", "ParkId", "PositionRecord", "ProfileRecord",
    "contractor_status_record",
    "parse_contractor_status", "parse_position", "parse_profile", "position_record", "profile_record",
]

EPOCH_MIN, EPOCH_MAX = 946_684_800.0, 4_102_444_800.0  # 2000..2100: milliseconds are refused, not misread


def _epoch(value: object) -> object:
    """Epoch seconds as they are; an ISO 8601 time (with its offset) as epoch seconds."""
    if isinstance(value, bool):
        raise ValueError("not a time")
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("neither epoch seconds nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError("an ISO 8601 time needs its offset (Z, +03:00)")
    return moment.timestamp()


def _lowered(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Epoch = Annotated[float, BeforeValidator(_epoch), Field(ge=EPOCH_MIN, le=EPOCH_MAX, allow_inf_nan=False)]
# the ids as every input (and the driver endpoints' X-Park-Id, X-Driver-Profile-Id) must spell them
ParkId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^_\s\x00-\x1f\x7f]+$")]
DriverId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
PdId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]
Status = Annotated[DriverStatus, BeforeValidator(_lowered)]


class MalformedRecord(ValueError):
    """A record no rule can apply; the message says why."""


class _Upstream(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # another service's topic: its new fields are no error


class ContractorStatusRecord(_Upstream):
    park_id: ParkId
    driver_id: DriverId
    status: Status
    time: Epoch


class PositionRecord(_Upstream):
    park_id: ParkId
    driver_id: DriverId
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    time: Epoch


class ProfileRecord(_Upstream):
    park_id: Optional[ParkId] = None  # the key says it too
    driver_id: Optional[DriverId] = None
    driver_license_pd_id: Optional[PdId] = None
    categories: list[Annotated[str, StringConstraints(max_length=64)]] = []

    @field_validator("categories")
    @classmethod
    def _one_spelling(cls, value: list[str]) -> list[str]:
        return sorted({normalise_category(c) for c in value} - {""})


def parse_contractor_status(value: Optional[bytes]) -> StatusChanged:
    record = record_model(ContractorStatusRecord, value, "contractor-status record", MalformedRecord)
    return StatusChanged(record.park_id, record.driver_id, record.status, record.time)


def parse_position(value: Optional[bytes]) -> PositionReported:
    record = record_model(PositionRecord, value, "driver-positions record", MalformedRecord)
    return PositionReported(record.park_id, record.driver_id, record.lat, record.lon, record.time)


class _DriverIds(BaseModel):
    park_id: ParkId
    driver_id: DriverId


def _key_ids(key: Union[bytes, str, None]) -> Optional[tuple[str, str]]:
    if key is None:
        return None
    try:
        text = key.decode() if isinstance(key, bytes) else key
        park_id, driver_id = split_driver_key(text)
        ids = _DriverIds(park_id=park_id, driver_id=driver_id)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise MalformedRecord(f"driver-profiles record: key: not park_id_driver_id ({problems})") from None
    except ValueError as exc:  # not UTF-8, no "_"
        raise MalformedRecord(f"driver-profiles record: key: not park_id_driver_id ({exc})") from None
    return ids.park_id, ids.driver_id


def parse_profile(key: Union[bytes, str, None], value: Optional[bytes]) -> ProfileChanged:
    """A profile set, or (a tombstone) removed. The key names the driver; ids in the value, if
    any, must agree with it."""
    ids = _key_ids(key)
    if value is None:
        if ids is None:
            raise MalformedRecord("driver-profiles record: a tombstone without a key")
        return ProfileChanged(*ids, None)
    record = record_model(ProfileRecord, value, "driver-profiles record", MalformedRecord)
    named = (record.park_id, record.driver_id)
    if None not in named and ids is not None and named != ids:
        raise MalformedRecord(f"driver-profiles record: park_id, driver_id: {named} but the key says {ids}")
    if ids is None:
        if record.park_id is None or record.driver_id is None:
            raise MalformedRecord("driver-profiles record: park_id, driver_id: missing, and no key")
        ids = (record.park_id, record.driver_id)
    return ProfileChanged(*ids, Profile(record.driver_license_pd_id or None, tuple(record.categories)))


# --- records as the simulator and the tests write them -------------------------------------------


def contractor_status_record(event: StatusChanged) -> bytes:
    return orjson.dumps({"park_id": event.park_id, "driver_id": event.driver_id, "status": str(event.status),
                         "time": event.at})


def position_record(event: PositionReported) -> bytes:
    return orjson.dumps({"park_id": event.park_id, "driver_id": event.driver_id, "lat": event.lat, "lon": event.lon,
                         "time": event.at})


def profile_record(event: ProfileChanged) -> tuple[bytes, Optional[bytes]]:
    """The key and value on `driver-profiles` (no value: a tombstone)."""
    key = driver_key(event.park_id, event.driver_id).encode()
    if event.profile is None:
        return key, None
    return key, orjson.dumps({"park_id": event.park_id, "driver_id": event.driver_id,
                              "driver_license_pd_id": event.profile.pd_id, "categories": list(event.profile.categories)})

