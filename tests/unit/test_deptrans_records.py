"""The KRT domain's input records (tables/deptrans/records.py): what contractor-status,
driver-positions and driver-profiles carry, read as typed messages or refused naming the
field at fault."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.deptrans.drivers import DriverStatus, PositionReported, Profile, ProfileChanged, StatusChanged
from tables.deptrans.records import (
    MalformedRecord,
    contractor_status_record,
    parse_contractor_status,
    parse_position,
    parse_profile,
    position_record,
    profile_record,
)

T0 = 1_800_000_000.0
PARK, DRIVER = "0253f79a86d14b7ab9ac1d5d3017be47", "c9a2f1d6e8b04a7d"
KEY = f"{PARK}_{DRIVER}"
JAN_15_8AM = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def body(**fields) -> bytes:
    return orjson.dumps(fields)


def status_body(**fields) -> bytes:
    return body(**{"park_id": PARK, "driver_id": DRIVER, "status": "online", "time": T0, **fields})


def position_body(**fields) -> bytes:
    return body(**{"park_id": PARK, "driver_id": DRIVER, "lat": 55.75, "lon": 37.61, "time": T0, **fields})


# --- contractor-status ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("online", DriverStatus.ONLINE), ("busy", DriverStatus.BUSY), ("offline", DriverStatus.OFFLINE),
    ("ONLINE", DriverStatus.ONLINE), (" Busy ", DriverStatus.BUSY), ("Offline\n", DriverStatus.OFFLINE),
], ids=["online", "busy", "offline", "upper-case", "padded-mixed-case", "trailing-newline"])
def test_statuses_are_read_in_any_case(raw, expected) -> None:
    assert parse_contractor_status(status_body(status=raw)) == StatusChanged(PARK, DRIVER, expected, T0)


@pytest.mark.parametrize("time, expected", [
    (T0, T0), (T0 + 0.123, T0 + 0.123), (int(T0), T0), (str(T0), T0),
    ("2027-01-15T08:00:00Z", JAN_15_8AM), ("2027-01-15T11:00:00+03:00", JAN_15_8AM),
    ("2027-01-15T08:00:00.500+00:00", JAN_15_8AM + 0.5),
], ids=["float", "fraction", "int", "numeric-string", "iso-z", "iso-moscow-offset", "iso-millis"])
def test_time_is_epoch_seconds_or_iso_8601_with_its_offset(time, expected) -> None:
    assert parse_contractor_status(status_body(time=time)).at == pytest.approx(expected, abs=1e-6)


def test_fields_this_service_does_not_read_are_ignored() -> None:
    event = parse_contractor_status(status_body(orders=["o1"], provider="yandex", extra={"a": 1}))
    assert event == StatusChanged(PARK, DRIVER, DriverStatus.ONLINE, T0)


@pytest.mark.parametrize("raw, field", [
    (None, "no value"),
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"[]", "value"),
    (status_body(status="on_order"), "status"),
    (status_body(status=""), "status"),
    (status_body(status=1), "status"),
    (status_body(time=T0 * 1000), "time"),
    (status_body(time=0), "time"),
    (status_body(time="2027-01-15T08:00:00"), "time: Value error, an ISO 8601 time needs its offset"),
    (status_body(time="yesterday"), "time: Value error, neither epoch seconds"),
    (status_body(time=True), "time"),
    (status_body(time="nan"), "time"),
    (status_body(park_id=""), "park_id"),
    (status_body(park_id="park_with_underscore"), "park_id"),
    (status_body(park_id="a b"), "park_id"),
    (status_body(driver_id="x" * 129), "driver_id"),
    (status_body(driver_id=None), "driver_id"),
    (body(park_id=PARK, status="online", time=T0), "driver_id"),
], ids=["tombstone", "empty", "broken-json", "a-list", "unknown-status", "empty-status", "number-status",
        "milliseconds", "before-2000", "iso-without-offset", "words", "bool-time", "nan-time", "empty-park",
        "underscore-in-park", "space-in-park", "long-driver", "null-driver", "missing-driver"])
def test_a_bad_status_record_is_refused_naming_the_field(raw, field) -> None:
    with pytest.raises(MalformedRecord) as caught:
        parse_contractor_status(raw)
    assert str(caught.value).startswith("contractor-status record: ")
    assert field in str(caught.value)


# --- driver-positions ----------------------------------------------------------------------------------


def test_a_position_is_read_with_its_time() -> None:
    assert parse_position(position_body()) == PositionReported(PARK, DRIVER, 55.75, 37.61, T0)
    assert parse_position(position_body(lat=-90, lon=180)).lat == -90


@pytest.mark.parametrize("fields, field", [
    ({"lat": 90.0001}, "lat"), ({"lat": -91}, "lat"), ({"lon": 180.5}, "lon"), ({"lon": "east"}, "lon"),
    ({"lat": None}, "lat"), ({"time": None}, "time"), ({"park_id": "a_b"}, "park_id"),
], ids=["lat-over", "lat-under", "lon-over", "lon-words", "lat-null", "time-null", "park-underscore"])
def test_a_bad_position_is_refused_naming_the_field(fields, field) -> None:
    with pytest.raises(MalformedRecord, match=f"^driver-positions record: {field}"):
        parse_position(position_body(**fields))


# --- driver-profiles -----------------------------------------------------------------------------------


def test_a_profile_is_read_with_its_categories_in_one_spelling() -> None:
    raw = body(park_id=PARK, driver_id=DRIVER, driver_license_pd_id="pd-123",
               categories=["Econom", "comfort+", "econom", " ", "business"])
    assert parse_profile(KEY.encode(), raw) == ProfileChanged(PARK, DRIVER, Profile("pd-123", ("business", "comfort_plus",
                                                                                                 "econom")))


@pytest.mark.parametrize("raw, expected", [
    (body(), Profile(None, ())),
    (body(driver_license_pd_id=None, categories=["econom"]), Profile(None, ("econom",))),
    (body(driver_license_pd_id="  ", categories=[]), Profile(None, ())),
    (body(driver_license_pd_id=" pd1 ", unknown="x"), Profile("pd1", ())),
], ids=["empty-object", "null-pd-id", "blank-pd-id", "padded-pd-id"])
def test_a_profile_without_a_licence_is_a_profile_without_a_pd_id(raw, expected) -> None:
    assert parse_profile(KEY, raw) == ProfileChanged(PARK, DRIVER, expected)


def test_a_tombstone_removes_the_profile_of_its_key() -> None:
    assert parse_profile(KEY.encode(), None) == ProfileChanged(PARK, DRIVER, None)


def test_without_a_key_the_ids_in_the_value_name_the_driver() -> None:
    raw = body(park_id=PARK, driver_id=DRIVER, driver_license_pd_id="pd1", categories=["econom"])
    assert parse_profile(None, raw) == ProfileChanged(PARK, DRIVER, Profile("pd1", ("econom",)))


@pytest.mark.parametrize("key, raw, why", [
    (None, None, "a tombstone without a key"),
    (None, body(driver_license_pd_id="pd1"), "missing, and no key"),
    (KEY, body(park_id=PARK, driver_id="someone-else"), "but the key says"),
    ("nounderscore", body(), "key: not park_id_driver_id"),
    (b"\xff\xfe_x", body(), "key: not park_id_driver_id"),
    ("park 1_drv", None, "key: not park_id_driver_id"),
    (KEY, body(categories="econom"), "categories"),
    (KEY, body(categories=[1]), "categories.0"),
    (KEY, b"nope", "not JSON"),
], ids=["keyless-tombstone", "keyless-without-ids", "ids-disagree", "key-without-underscore", "key-not-utf8",
        "key-with-space", "categories-not-a-list", "category-not-a-string", "not-json"])
def test_a_bad_profile_record_is_refused_with_the_reason(key, raw, why) -> None:
    with pytest.raises(MalformedRecord, match="^driver-profiles record: ") as caught:
        parse_profile(key, raw)
    assert why in str(caught.value)


# --- what the simulator writes reads back the same --------------------------------------------------


ids_ = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20)
times = st.floats(946_684_800.0, 4_102_444_800.0)


@settings(max_examples=200, deadline=None)
@given(ids_, ids_, st.sampled_from(list(DriverStatus)), times, st.floats(-90, 90), st.floats(-180, 180),
       st.one_of(st.none(), ids_), st.lists(st.sampled_from(["econom", "comfort", "comfort_plus", "cargo"]), unique=True))
def test_records_written_by_the_simulator_read_back_the_same(park, driver, value, at, lat, lon, pd_id, categories) -> None:
    event = StatusChanged(park, driver, value, at)
    assert parse_contractor_status(contractor_status_record(event)) == event
    moved = PositionReported(park, driver, lat, lon, at)
    assert parse_position(position_record(moved)) == moved
    changed = ProfileChanged(park, driver, Profile(pd_id, tuple(sorted(categories))))
    assert parse_profile(*profile_record(changed)) == changed
    gone = ProfileChanged(park, driver, None)
    assert parse_profile(*profile_record(gone)) == gone
