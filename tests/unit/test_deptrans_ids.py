"""A driver's KRT ID: kept whole only on the internal topic, said as `has_id` on the public one."""

from __future__ import annotations

import orjson

from tables.deptrans.ids import has_id, private_record, public_record


def test_the_public_record_says_has_id_and_never_carries_the_id() -> None:
    public = public_record("pd-1", 1_800_000_000.0)
    assert orjson.loads(public) == {"driver_license_pd_id": "pd-1", "has_id": True, "updated_at": 1_800_000_000.0}
    assert b"KRT" not in public
    assert orjson.loads(private_record("pd-1", "KRT0A1B2C3", 1.0))["deptrans_id"] == "KRT0A1B2C3"


def test_has_id_of_every_form_a_public_record_takes() -> None:
    assert has_id(orjson.loads(public_record("pd-1", 1.0)))
    assert has_id({"driver_license_pd_id": "pd-1", "deptrans_id": "KRT1", "updated_at": 1.0})  # an older version's
    assert not has_id(None)  # a tombstone
    assert not has_id({"driver_license_pd_id": "pd-1", "has_id": False})
    assert not has_id({"driver_license_pd_id": "pd-1", "has_id": "yes"})  # only true is true
    assert not has_id({"driver_license_pd_id": "pd-1", "deptrans_id": ""})
    assert not has_id(["has_id"])  # not a record of ours
