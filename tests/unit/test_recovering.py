"""One-key reads never answer a default for a partition this worker cannot answer yet, fleet-wide
answers name the workers that could not give their share, and readiness is not flipped by
rebalances (web/common.py `not_answerable_here`, `ask_owner`, `ask_all`; web/operations.py
`readiness`). Faust is faked by the few attributes the rule reads."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest
from faust.types import TP

import web.common as common
import web.operations as operations
from web.errors import ApiError, Recovering

ME, OTHER, THIRD = "http://me:1", "http://other:2", "http://third:3"
P1 = TP("t-ivr-rules-changelog", 1)


class _Table:
    def __init__(self, standby_reads: bool = True) -> None:
        self.table = SimpleNamespace(changelog_topic=SimpleNamespace(get_topic_name=lambda: P1.topic),
                                     standby_buffer_size=1 if standby_reads else None)

    def partition_of(self, key: str) -> int:
        return P1.partition


def _consumer(generation=3, stopped=False, thread_stopped=False, highwaters=None):
    """Faust's consumer as far as the rule reads it: its service state, its thread's aiokafka
    consumer's group coordinator (the generation), the changelog ends it last fetched."""
    coordinator = SimpleNamespace(generation=generation)
    thread = SimpleNamespace(should_stop=thread_stopped, _consumer=SimpleNamespace(_coordinator=coordinator))
    return SimpleNamespace(should_stop=stopped, _thread=thread, highwater=(highwaters or {}).get)


def _app(recovered=True, rebalancing=False, in_recovery=False, actives=(), standbys=(), owners=None,
         consumer=None, standby_offsets=None):
    event = asyncio.Event()
    if recovered:
        event.set()
    return SimpleNamespace(
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=event, standby_tps=set(standbys),
                                                        standby_offsets=standby_offsets or {})),
        rebalancing=rebalancing, in_recovery=in_recovery, should_stop=False, consumer=consumer or _consumer(),
        assignor=SimpleNamespace(assigned_actives=lambda: set(actives), assigned_standbys=lambda: set(standbys),
                                 _tps_url=owners or {}, tables_metadata=lambda: {}),
    )


@pytest.fixture
def here(monkeypatch):
    monkeypatch.setattr(common, "settings", SimpleNamespace(canonical_url=ME))

    def install(peers_checked=True, **kwargs):
        fake = _app(**kwargs)
        monkeypatch.setattr(common, "app", fake)
        monkeypatch.setattr(operations, "app", fake)
        checked = asyncio.Event()
        if peers_checked:
            checked.set()
        monkeypatch.setattr(operations, "peers_checked", checked)
        return fake
    return install


# --- the rule -------------------------------------------------------------------------------------

@pytest.mark.parametrize("state, why", [
    ({"recovered": False}, "its tables are being recovered after its start"),
    ({"rebalancing": True, "actives": {P1}}, "a rebalance is under way"),
    ({"in_recovery": True, "actives": {P1}}, "a rebalance is under way"),
    ({"actives": set()}, "partition 1 is not owned here"),
    ({"actives": {P1}}, None),
], ids=["first-recovery", "rebalancing", "recovering-actives", "not-owned", "owned"])
def test_a_partition_is_answerable_once_recovered_owned_and_not_rebalancing(here, state, why):
    here(**state)
    assert common.not_answerable_here(_Table(), "+7916") == why


@pytest.mark.parametrize("state, why", [
    ({"standbys": {P1}}, None),
    ({"standbys": set(), "actives": {P1}}, "partition 1 is not kept here"),
    ({"standbys": {P1}, "recovered": False}, "its tables are being recovered after its start"),
], ids=["kept", "active-not-standby", "first-recovery"])
def test_a_standby_partition_is_answerable_as_a_standby_once_recovered(here, state, why):
    here(**state)
    assert common.not_answerable_here(_Table(), "+7916", standby=True) == why


@pytest.mark.parametrize("applied, end, standby_reads, caught_up", [
    (9, 10, True, True),  # the last record applied: offset 9, the end 10
    (7, 10, True, False),  # records still to apply
    (None, 10, True, False),  # nothing applied yet
    (9, None, True, False),  # no end known yet (nothing fetched since the assignment)
    (9, 10, False, False),  # standbys applied 1,000 at a time: never read
], ids=["caught-up", "behind", "nothing-applied", "no-end-known", "buffered-standby"])
def test_a_standby_is_read_only_when_caught_up_with_its_changelog(here, applied, end, standby_reads, caught_up):
    here(standbys={P1}, standby_offsets={} if applied is None else {P1: applied},
         consumer=_consumer(highwaters={} if end is None else {P1: end}))
    assert common.standby_caught_up(_Table(standby_reads), "+7916") is caught_up


# --- one-key reads ----------------------------------------------------------------------------------

def _ask(forwarded=False, standby_ok=False, fetched=None):
    """ask_owner for one key: (its answer, what answered: "local" or the URL fetched)."""
    request = SimpleNamespace(headers={common.FORWARDED: "1"} if forwarded else {})
    answered = []

    async def local():
        answered.append("local")
        return {"target": "ivr"}

    async def fetch(url):
        answered.append(url)
        if isinstance(fetched, BaseException):
            raise fetched
        return fetched

    common_fetch, common.fetch_json = common.fetch_json, fetch
    try:
        answer = asyncio.run(common.ask_owner(_Table(), "+7916", "/routing?phone=%2B7916", local, request, standby_ok))
    finally:
        common.fetch_json = common_fetch
    return answer, answered


def test_no_assignment_known_is_a_503_recovering_with_retry_after(here):
    here(actives=set())
    with pytest.raises(Recovering) as raised:
        _ask()
    assert (raised.value.status, raised.value.code, raised.value.retry_after_s) == (503, "recovering", 1)


def test_the_owner_still_recovering_answers_503_not_a_default(here):
    here(rebalancing=True, actives={P1}, owners={P1: ME})
    with pytest.raises(Recovering) as raised:
        _ask()
    assert "rebalance" in raised.value.message


def test_the_owner_in_its_first_recovery_answers_503_not_a_default(here):
    here(recovered=False, actives={P1}, owners={P1: ME})
    with pytest.raises(Recovering) as raised:
        _ask(standby_ok=True)
    assert "recovered after its start" in raised.value.message


def test_a_forwarded_read_for_a_partition_not_owned_here_is_503_not_empty(here):
    here(actives=set(), owners={P1: OTHER})
    with pytest.raises(Recovering):
        _ask(forwarded=True)


def test_the_owner_answers_itself_when_it_can(here):
    here(actives={P1}, owners={P1: ME})
    assert _ask() == ({"target": "ivr"}, ["local"])


def test_a_read_for_another_workers_partition_is_forwarded_to_it(here):
    here(actives=set(), owners={P1: OTHER})
    assert _ask(fetched={"target": "operator"}) == ({"target": "operator"}, [OTHER + "/routing?phone=%2B7916"])


def test_the_owners_503_recovering_passes_through(here):
    here(actives=set(), owners={P1: OTHER})
    with pytest.raises(Recovering) as raised:
        _ask(fetched=Recovering("this worker cannot answer for '+7916' yet: a rebalance is under way", 2))
    assert raised.value.retry_after_s == 2


def test_a_caught_up_standby_answers_instead_of_forwarding(here):
    here(standbys={P1}, owners={P1: OTHER}, standby_offsets={P1: 9}, consumer=_consumer(highwaters={P1: 10}))
    assert _ask(standby_ok=True) == ({"target": "ivr"}, ["local"])


def test_a_standby_behind_its_changelog_forwards(here):
    here(standbys={P1}, owners={P1: OTHER}, standby_offsets={P1: 3}, consumer=_consumer(highwaters={P1: 10}))
    assert _ask(standby_ok=True, fetched={"target": "ivr"})[1] == [OTHER + "/routing?phone=%2B7916"]


def _answer(status, body, retry_after=None):
    return common._recovering_of(status, orjson.dumps(body) if not isinstance(body, bytes) else body, retry_after)


@pytest.mark.parametrize("status, body, retry_after, wait", [
    (503, {"error": {"code": "recovering", "message": "m"}}, "2", 2),
    (503, {"error": {"code": "recovering", "message": "m"}}, None, 1),  # no header: ours
    (503, {"error": {"code": "recovering", "message": "m"}}, "soon", 1),  # not seconds: ours
    (503, {"error": {"code": "unavailable", "message": "Kafka"}}, "2", None),  # another 503
    (500, {"error": {"code": "recovering", "message": "m"}}, None, None),
    (503, b"<html>proxy</html>", None, None),
    (503, {"error": "recovering"}, None, None),
], ids=["recovering", "no-retry-after", "date-retry-after", "other-503", "not-503", "not-json", "odd-shape"])
def test_only_an_owners_503_recovering_passes_through_as_recovering(status, body, retry_after, wait):
    passed = _answer(status, body, retry_after)
    assert (None if passed is None else passed.retry_after_s) == wait


def test_an_api_error_with_retry_after_sets_the_header_in_the_error_shape():
    class Still(common.ApiView):
        public = True

        async def get(self, request):
            raise Recovering("this worker cannot answer for 'k' yet: a rebalance is under way", 2)

    request = SimpleNamespace(method="GET", match_info={}, path="/still", headers={})
    response = asyncio.run(Still(common.app, common.app.web).dispatch(request))
    assert (response.status, response.headers["Retry-After"]) == (503, "2")
    assert orjson.loads(response.body) == {"error": {"code": "recovering", "message":
                                                     "this worker cannot answer for 'k' yet: a rebalance is under way"}}


# --- fleet-wide answers -----------------------------------------------------------------------------

def _gather(peers):
    """ask_all over workers ME + `peers` (url -> their answer, or an exception raised by fetching it)."""
    common.app.assignor.tables_metadata = lambda: {url: None for url in peers}

    async def local():
        return {"queues": ["mine"]}

    async def fetch(url):
        result = peers[url.removesuffix("/internal/cc/queues")]
        if isinstance(result, BaseException):
            raise result
        return result

    common_fetch, common.fetch_json = common.fetch_json, fetch
    try:
        return asyncio.run(common.ask_all("/internal/cc/queues", local))
    finally:
        common.fetch_json = common_fetch


def test_a_peer_answering_503_recovering_is_named_missing_not_a_failure(here):
    here(actives={P1})
    answers, missing = _gather({OTHER: Recovering("its tables are being recovered after its start"),
                                THIRD: {"queues": ["theirs"]}})
    assert (answers, missing) == ([{"queues": ["mine"]}, {"queues": ["theirs"]}], [OTHER])


def test_a_peer_that_is_down_is_named_missing(here):
    here(actives={P1})
    assert _gather({OTHER: ApiError(502, "worker_unavailable", "refused")})[1] == [OTHER]


def test_this_worker_in_a_rebalance_leaves_its_own_share_out_and_names_itself(here):
    here(rebalancing=True, actives={P1})
    answers, missing = _gather({OTHER: {"queues": ["theirs"]}})
    assert (answers, missing) == ([{"queues": ["theirs"]}], [ME])


def test_own_share_is_503_recovering_while_the_tables_cannot_be_read(here):
    here(recovered=False)

    async def share():
        return {"queues": []}  # would be an empty share, said to be complete

    with pytest.raises(Recovering):
        asyncio.run(common.own_share(share))


def test_fleet_wide_freshness_is_stale_and_names_whom_it_misses():
    from web.callcenter import combined_freshness

    body = combined_freshness([{"lag_s": 0.2, "stale": False, "backlog_records": 0}], [OTHER])
    assert (body["stale"], body["unavailable_workers"]) == (True, [OTHER])
    assert combined_freshness([], [ME, OTHER])["stale"] is True  # nobody could answer: stale, not empty and fresh


# --- readiness ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("state, ready, reason", [
    ({"recovered": False}, False, "starting"),
    ({"recovered": False, "rebalancing": True}, False, "recovering tables"),
    ({"rebalancing": True, "actives": {P1}}, True, "rebalancing"),  # a later rebalance: still ready
    ({"in_recovery": True, "actives": {P1}}, True, "consuming"),  # its recovery: still ready
    ({"standbys": {P1}}, True, "consuming"),  # standby partitions only: ready, it forwards
    ({}, True, "consuming"),  # no partition at all (more workers than replicas): ready, it forwards
    ({"consumer": _consumer(generation=-1)}, False, "left the consumer group"),
    ({"consumer": _consumer(stopped=True)}, False, "consumer stopped"),
    ({"consumer": _consumer(thread_stopped=True)}, False, "consumer stopped"),
    ({"peers_checked": False}, False, "checking the other workers take its credential"),
], ids=["starting", "first-recovery", "later-rebalance", "later-recovery", "standby-only", "idle", "left-group",
        "consumer-crashed", "consumer-thread-crashed", "peers-unchecked"])
def test_ready_once_recovered_and_not_flipped_by_rebalances(here, state, ready, reason):
    here(**state)
    assert operations.readiness() == (ready, reason)


def test_a_stopping_worker_is_not_ready(here):
    here().should_stop = True
    assert operations.readiness() == (False, "stopping")


def test_ready_sets_the_gauge(here):
    from app import metrics

    here(recovered=False)
    assert operations.gauged_readiness()[0] is False and metrics.ready._value.get() == 0
    here()
    assert operations.gauged_readiness()[0] is True and metrics.ready._value.get() == 1


# --- a chat socket's greeting -------------------------------------------------------------------------

def test_a_sockets_greeting_waits_out_a_desk_being_recovered(monkeypatch):
    import web.chat as chat

    asked, slept = [], []

    async def read():
        asked.append(1)
        if len(asked) < 3:
            raise Recovering("a rebalance is under way", 1)
        return "desk"

    async def sleep(s):
        slept.append(s)

    monkeypatch.setattr(chat.asyncio, "sleep", sleep)
    assert asyncio.run(chat._patiently(read)) == "desk" and slept == [1, 1]


def test_a_sockets_greeting_gives_up_on_a_desk_that_stays_unreadable(monkeypatch):
    import web.chat as chat

    async def read():
        raise Recovering("its tables are being recovered after its start", 5)

    with pytest.raises(Recovering):
        asyncio.run(chat._patiently(read, patience_s=1))  # the next try would be past its patience


# --- the workers take each other's credential: checked once at the start -----------------------------

def _peer_check(here, monkeypatch, refused):
    fake = here(peers_checked=False)
    crashed = []
    fake.refuse_start = crashed.append
    asked = []

    async def refusing(urls):
        asked.append(urls)
        return refused

    monkeypatch.setattr(operations, "settings", SimpleNamespace(canonical_url=ME))
    monkeypatch.setattr(operations, "worker_urls", lambda: [ME, OTHER, THIRD])
    monkeypatch.setattr(operations, "refusing_peers", refusing)
    asyncio.run(operations.check_peers())
    return asked, crashed


def test_a_worker_whose_credential_every_other_takes_becomes_ready(here, monkeypatch):
    asked, crashed = _peer_check(here, monkeypatch, refused=[])
    assert asked == [[OTHER, THIRD]] and crashed == []  # every other worker asked, itself not
    assert operations.readiness() == (True, "consuming")


def test_a_worker_another_refuses_does_not_start_and_says_why_in_one_line(here, monkeypatch):
    asked, refused = _peer_check(here, monkeypatch, refused=[THIRD])
    assert len(refused) == 1 and THIRD in refused[0] and "INTERNAL_TOKEN" in refused[0]
    assert operations.readiness()[0] is False
