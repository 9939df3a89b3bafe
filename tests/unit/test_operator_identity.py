"""Who is who in Asterisk (tables/operatorstatus/identity.py): a queue member's name (the
operator's id, queue_log's agent) and its interface (where QueuePause reaches it)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ami import queue_member_from_event
from tables.operatorstatus.identity import Identities, identities_from_setting, member_added

ALICE = ("Alice", "PJSIP/1001", "PJSIP/1001")


def test_a_member_nobody_told_of_is_its_own_interface() -> None:
    assert Identities().interface_of("SIP/1127") == "SIP/1127"
    assert Identities().operator_of("SIP/1127") == "SIP/1127"


def test_a_named_member_is_reached_at_its_interface_and_found_by_either_name() -> None:
    known = Identities().learned([ALICE])
    assert known.interface_of("Alice") == "PJSIP/1001"
    assert (known.operator_of("PJSIP/1001"), known.operator_of("Alice")) == ("Alice", "Alice")


def test_a_local_channel_member_is_found_by_its_state_interface_too() -> None:
    known = Identities().learned([("Bob", "Local/1002@agents/n", "PJSIP/1002")])
    assert known.interface_of("Bob") == "Local/1002@agents/n"
    assert known.operator_of("PJSIP/1002") == known.operator_of("Local/1002@agents/n") == "Bob"


def test_a_member_without_a_name_of_its_own_says_nothing() -> None:
    known = Identities()
    assert known.learned([("SIP/1127", "SIP/1127", "SIP/1127"), ("", "SIP/1", ""), ("X", "", "")]) is known


def test_what_is_known_already_gives_the_same_map_back() -> None:
    known = Identities().learned([ALICE])
    assert known.learned([ALICE]) is known


def test_a_member_moved_to_another_phone_is_no_longer_found_at_the_old_one() -> None:
    moved = Identities().learned([ALICE]).learned([("Alice", "PJSIP/2001", "PJSIP/2001")])
    assert moved.interface_of("Alice") == "PJSIP/2001"
    assert moved.operator_of("PJSIP/1001") == "PJSIP/1001"


def test_the_setting_names_interfaces_and_asterisk_overrides_it() -> None:
    configured = identities_from_setting({"Alice": "PJSIP/1001", "Bob": "PJSIP/1002"})
    assert (configured.interface_of("Alice"), configured.operator_of("PJSIP/1002")) == ("PJSIP/1001", "Bob")
    told = configured.learned([("Alice", "PJSIP/3001", "")])
    assert told.interface_of("Alice") == "PJSIP/3001"
    assert told.learned([("Alice", "PJSIP/1001", "")], from_asterisk=False).interface_of("Alice") == "PJSIP/3001"


@pytest.mark.parametrize("event, member", [
    pytest.param({"Event": "QueueMemberAdded", "Queue": "support", "MemberName": "Alice", "Interface": "PJSIP/1001",
                  "StateInterface": "PJSIP/1001"}, ALICE, id="QueueMemberAdded, Asterisk 12+"),
    pytest.param({"Event": "QueueMemberAdded", "Queue": "support", "MemberName": "Alice", "Location": "SIP/1001"},
                 ("Alice", "SIP/1001", ""), id="QueueMemberAdded, Asterisk 1.8 (Location)"),
    pytest.param({"Event": "QueueMember", "Queue": "support", "Name": "Alice", "Location": "PJSIP/1001",
                  "StateInterface": "PJSIP/1001"}, ALICE, id="QueueStatus's QueueMember"),
    pytest.param({"Event": "QueueMemberAdded", "Queue": "support", "Interface": "SIP/7"}, ("SIP/7", "SIP/7", ""),
                 id="no name: the interface"),
    pytest.param({"Event": "QueueMemberAdded", "Queue": "support", "MemberName": "Alice"}, None, id="no interface"),
    pytest.param({"Event": "QueueMemberPause", "MemberName": "Alice", "Interface": "PJSIP/1001"}, None,
                 id="another member event"),
])
def test_a_member_event_names_the_member_and_its_interfaces(event, member) -> None:
    assert member_added(event) == member


def test_the_ami_clients_queue_member_carries_the_state_interface() -> None:
    member = queue_member_from_event({"Event": "QueueMember", "Queue": "support", "Name": "Alice",
                                      "Location": "Local/1001@agents/n", "StateInterface": "PJSIP/1001", "Paused": "1"})
    assert (member.name, member.interface, member.state_interface, member.paused) == (
        "Alice", "Local/1001@agents/n", "PJSIP/1001", True)


names = st.sampled_from(["Alice", "Bob", "Carol", "Dave"])
phones = st.sampled_from([f"PJSIP/{n}" for n in range(1001, 1007)])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, phones), max_size=20))
def test_each_operator_is_found_at_its_latest_interface_by_either_name(told) -> None:
    known = Identities()
    latest: dict[str, str] = {}
    for name, phone in told:
        known = known.learned([(name, phone, "")])
        latest = {n: p for n, p in latest.items() if p != phone}  # a phone has one member at a time here
        latest[name] = phone
    for name, phone in latest.items():
        assert known.interface_of(name) == phone
        assert known.operator_of(phone) == name
