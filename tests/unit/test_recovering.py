"""One-key reads never answer a default for a partition this worker cannot answer yet, and
readiness is not flipped by rebalances (web/common.py `not_answerable_here`, `ask_owner`;
web/operations.py `readiness`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP

import web.common as common
import web.operations as operations
from web.errors import ApiError

ME, OTHER = "http://me:1", "http://other:2"


class _Table:
    def __init__(self) -> None:
        self.table = SimpleNamespace(changelog_topic=SimpleNamespace(get_topic_name=lambda: "t-ivr-rules-changelog"),
                                     standby_buffer_size=1)

    def partition_of(self, key: str) -> int:
        return 1


def _app(recovered=True, rebalancing=False, in_recovery=False, actives=(), standbys=(), owners=None):
    event = asyncio.Event()
    if recovered:
        event.set()
    return SimpleNamespace(
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=event, standby_tps=set(standbys), standby_offsets={})),
        rebalancing=rebalancing, in_recovery=in_recovery, should_stop=False, consumer=None,
        assignor=SimpleNamespace(assigned_actives=lambda: set(actives), assigned_standbys=lambda: set(standbys),
                                 _tps_url=owners or {}),
    )


P1 = TP("t-ivr-rules-changelog", 1)


@pytest.fixture
def here(monkeypatch):
    monkeypatch.setattr(common, "settings", SimpleNamespace(canonical_url=ME))

    def install(**kwargs):
        fake = _app(**kwargs)
        monkeypatch.setattr(common, "app", fake)
        monkeypatch.setattr(operations, "app", fake)
        return fake
    return install


@pytest.mark.parametrize("state, why", [
    ({"recovered": False}, "its tables are being recovered after its start"),
    ({"rebalancing": True, "actives": {P1}}, "a rebalance is under way"),
    ({"in_recovery": True, "actives": {P1}}, "a rebalance is under way"),
    ({"actives": set()}, "partition 1 is not owned here"),
    ({"actives": {P1}}, None),
])
def test_a_partition_is_answerable_once_recovered_owned_and_not_rebalancing(here, state, why):
    here(**state)
    assert common.not_answerable_here(_Table(), "+7916") == why


def _ask(owners, forwarded=False, standby_ok=False):
    request = SimpleNamespace(headers={common.FORWARDED: "1"} if forwarded else {})
    answered = []

    async def local():
        answered.append("local")
        return {"target": "ivr"}

    return asyncio.run(common.ask_owner(_Table(), "+7916", "/routing?phone=%2B7916", local, request, standby_ok)), answered


def test_no_assignment_known_is_a_503_recovering_with_retry_after(here):
    here(actives=set())
    with pytest.raises(ApiError) as raised:
        _ask(owners={})
    assert (raised.value.status, raised.value.code, raised.value.retry_after_s) == (503, "recovering", 1)


def test_the_owner_still_recovering_answers_503_not_a_default(here):
    here(rebalancing=True, actives={P1}, owners={P1: ME})
    with pytest.raises(ApiError) as raised:
        _ask(owners=None)
    assert raised.value.code == "recovering" and "rebalance" in raised.value.message


def test_a_forwarded_read_for_a_partition_not_owned_here_is_503_not_empty(here):
    here(actives=set(), owners={P1: OTHER})
    with pytest.raises(ApiError) as raised:
        _ask(owners=None, forwarded=True)
    assert raised.value.code == "recovering"


def test_the_owner_answers_itself_when_it_can(here):
    here(actives={P1}, owners={P1: ME})
    assert _ask(owners=None) == ({"target": "ivr"}, ["local"])


@pytest.mark.parametrize("state, ready, reason", [
    ({"recovered": False}, False, "starting"),
    ({"recovered": False, "rebalancing": True}, False, "recovering tables"),
    ({"rebalancing": True, "actives": {P1}}, True, "rebalancing"),  # a later rebalance: still ready
    ({"standbys": {P1}}, True, "consuming"),  # standby partitions only: ready, it forwards
])
def test_ready_once_recovered_and_not_flipped_by_rebalances(here, state, ready, reason):
    here(**state)
    assert operations.readiness() == (ready, reason)
