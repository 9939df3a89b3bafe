"""IVR routing's rules (tables/ivr): phone numbers, commands, routing rules, bindings, and
the stage that applies them (agents/ivr.IvrStage) over in-memory tables."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ivr import IvrStage
from app.batching import Outbox
from app.codec import dumps
from app.main import app
from tables.ivr.commands import (
    BindInbound,
    MalformedCommand,
    RouteToIvr,
    RouteToOperator,
    command_key,
    command_record,
    parse_command,
)
from tables.ivr.phones import InvalidPhone, normalise
from tables.ivr.rules import (
    Binding,
    Reason,
    RoutingRule,
    Source,
    Target,
    apply_binding,
    apply_rule_command,
    call_back,
    expire_rule,
    published_rule,
    routing_of,
)
from tables.ivr.store import topics
from tests.unit.panel import MemoryTable

T0 = 1_800_000_000.0
PHONE = "+79161234567"
KEEP_S = 600.0  # how long a finished order is remembered (IVR_MARGIN_S)
HOUR = 3600.0


def ivr(order: str, at: float, ttl: float = HOUR, phone: str = PHONE) -> RouteToIvr:
    return RouteToIvr(phone, order, T0 + at + ttl, T0 + at)


def operator(order: str | None, at: float, phone: str = PHONE) -> RouteToOperator:
    return RouteToOperator(phone, order, T0 + at)


def play(*commands, rule: RoutingRule | None = None) -> RoutingRule | None:
    for command in commands:
        rule = apply_rule_command(rule, command, KEEP_S)
    return rule


def route(rule: RoutingRule | None, at: float) -> tuple[str, str | None, Reason]:
    r = routing_of(rule, T0 + at)
    return str(r.target), r.order_id, r.reason


# --- phone numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["89161234567", "8 (916) 123-45-67", "+7 916 123 45 67", "79161234567", "9161234567",
                                 "+7-916-123-45-67"])
def test_every_way_of_writing_a_russian_mobile_is_one_number(raw) -> None:
    assert normalise(raw) == PHONE


def test_a_foreign_number_keeps_its_country() -> None:
    assert normalise("+1 415 555 2671") == "+14155552671"


@pytest.mark.parametrize("raw", ["", "   ", "123", "abc", "+7 916", "8" * 70, "+999 123456789"],
                         ids=["empty", "blank", "short", "letters", "cut", "too-long", "no-country"])
def test_what_is_not_a_phone_number_is_refused_with_a_reason(raw) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise(raw)
    assert str(caught.value)


# --- commands on ivr-commands --------------------------------------------------------------------


def parse(body: dict) -> object:
    return parse_command(orjson.dumps(body), "RU", binding_ttl_s=86400, max_ttl_s=2 * 86400)


def test_each_kind_of_command_is_read_with_its_numbers_normalised() -> None:
    assert parse({"kind": "route_to_ivr", "phone": "8 916 123-45-67", "order_id": "o1", "expires_at": T0 + 60, "at": T0}) \
        == RouteToIvr(PHONE, "o1", T0 + 60, T0)
    assert parse({"kind": "route_to_operator", "phone": "89161234567", "at": T0}) == RouteToOperator(PHONE, None, T0)
    assert parse({"kind": "bind_inbound", "order_id": "o1", "inbound_number": "84951234567", "at": T0}) \
        == BindInbound("o1", "+74951234567", None, T0 + 86400, T0)  # no expiry: IVR_BINDING_TTL_S


def test_a_command_written_by_the_web_reads_back_the_same() -> None:
    for command in (RouteToIvr(PHONE, "o1", T0 + 60, T0), RouteToOperator(PHONE, "o1", T0),
                    BindInbound("o1", "+74951234567", "gw-2", T0 + 60, T0)):
        assert parse(orjson.loads(command_record(command))) == command


def test_commands_are_keyed_by_the_state_they_change() -> None:
    assert command_key(RouteToIvr(PHONE, "o1", T0 + 60, T0)) == PHONE
    assert command_key(BindInbound("o1", "+74951234567", None, T0 + 60, T0)) == "o1"


@pytest.mark.parametrize("raw, why", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "object"),
    (b'{"kind": "teleport", "at": 1800000000}', "kind"),
    (b'{"kind": "route_to_ivr", "phone": "89161234567", "expires_at": 1800000060, "at": 1800000000}', "order_id"),
    (b'{"kind": "route_to_ivr", "phone": "12", "order_id": "o1", "expires_at": 1800000060, "at": 1800000000}', "phone"),
    (b'{"kind": "route_to_ivr", "phone": "89161234567", "order_id": "o1", "expires_at": 1800000000, "at": 1800000000}',
     "not after"),
    (b'{"kind": "route_to_ivr", "phone": "89161234567", "order_id": "o1", "expires_at": 1900000000, "at": 1800000000}',
     "IVR_MAX_TTL_S"),
    (b'{"kind": "route_to_operator", "phone": "89161234567", "at": 1800000000, "extra": 1}', "extra"),
    (b'{"kind": "route_to_operator", "phone": "89161234567", "order_id": "", "at": 1800000000}', "order_id"),
    (b'{"kind": "route_to_operator", "phone": "89161234567", "at": "yesterday"}', "at"),
    (None, "empty"),
], ids=["not-json", "not-object", "unknown-kind", "no-order", "bad-phone", "expired", "too-long-ttl", "extra-field",
        "empty-order", "bad-time", "tombstone"])
def test_a_malformed_command_is_refused_with_its_reason(raw, why) -> None:
    with pytest.raises(MalformedCommand) as caught:
        parse_command(raw, "RU", 86400, 2 * 86400)
    assert why in str(caught.value)


# --- routing rules --------------------------------------------------------------------------------


def test_a_call_before_the_rule_exists_goes_to_an_operator() -> None:
    assert route(None, 0) == ("operator", None, Reason.NO_RULE)


def test_after_route_to_ivr_the_passengers_calls_go_to_the_ivr_with_the_order() -> None:
    rule = play(ivr("o1", 0))
    assert route(rule, 10) == ("ivr", "o1", Reason.ACTIVE_ORDER)
    assert routing_of(rule, T0 + 10).expires_at == T0 + HOUR


def test_route_to_ivr_again_extends_the_rule_and_never_shortens_it() -> None:
    rule = play(ivr("o1", 0, ttl=HOUR), ivr("o1", 60, ttl=2 * HOUR))
    assert routing_of(rule, T0).expires_at == T0 + 60 + 2 * HOUR
    assert routing_of(play(ivr("o1", 120, ttl=60), rule=rule), T0).expires_at == T0 + 60 + 2 * HOUR


def test_several_orders_of_one_passenger_keep_the_latest_expiry() -> None:
    rule = play(ivr("o1", 0, ttl=2 * HOUR), ivr("o2", 60, ttl=HOUR))
    r = routing_of(rule, T0 + 100)
    assert (r.order_id, r.expires_at) == ("o1", T0 + 2 * HOUR)
    assert published_rule(rule, T0 + 100)["orders"] == [{"order_id": "o1", "expires_at": T0 + 2 * HOUR},
                                                        {"order_id": "o2", "expires_at": T0 + 60 + HOUR}]


def test_route_to_operator_sends_the_passengers_calls_to_an_operator_again() -> None:
    rule = play(ivr("o1", 0), operator("o1", 300))
    assert route(rule, 301) == ("operator", "o1", Reason.ORDER_FINISHED)
    assert published_rule(rule, T0 + 301) is None  # a tombstone on ivr-routing-rules


def test_a_call_after_the_order_finished_but_before_the_rule_expired_is_reported_finished() -> None:
    # the telephony may still send it to the IVR (its copy of the rule is behind): the IVR
    # asks, learns the order finished, and sends the call on to an operator
    rule = play(ivr("o1", 0, ttl=HOUR), operator("o1", 300))
    assert route(rule, 1000) == ("operator", "o1", Reason.ORDER_FINISHED)
    assert route(rule, HOUR - 1) == ("operator", "o1", Reason.ORDER_FINISHED)


def test_one_order_finishing_leaves_the_passengers_other_order_in_the_ivr() -> None:
    rule = play(ivr("o1", 0, ttl=2 * HOUR), ivr("o2", 60, ttl=HOUR), operator("o1", 300))
    assert route(rule, 400) == ("ivr", "o2", Reason.ACTIVE_ORDER)
    assert routing_of(rule, T0 + 400).expires_at == T0 + 60 + HOUR


def test_route_to_operator_without_an_order_ends_every_order() -> None:
    rule = play(ivr("o1", 0), ivr("o2", 60), operator(None, 300))
    assert route(rule, 301)[0] == "operator"
    assert published_rule(rule, T0 + 301) is None


def test_a_rule_that_could_not_be_removed_expires_by_its_ttl() -> None:
    rule = play(ivr("o1", 0, ttl=600))
    assert route(rule, 599) == ("ivr", "o1", Reason.ACTIVE_ORDER)
    assert route(rule, 600) == ("operator", "o1", Reason.RULE_EXPIRED)  # at once, before any sweep
    assert published_rule(rule, T0 + 600) is None
    assert expire_rule(rule, T0 + 600) is None  # the sweep forgets it
    assert route(expire_rule(rule, T0 + 600), 601) == ("operator", None, Reason.NO_RULE)


def test_a_finished_order_is_remembered_until_its_rule_would_have_expired() -> None:
    rule = play(ivr("o1", 0, ttl=HOUR), operator("o1", 300))
    assert expire_rule(rule, T0 + HOUR - 1) == rule
    assert expire_rule(rule, T0 + HOUR) is None


def test_a_route_to_ivr_that_arrives_after_the_orders_finish_does_not_bring_it_back() -> None:
    rule = play(operator("o1", 300), ivr("o1", 0))
    assert route(rule, 301) == ("operator", "o1", Reason.ORDER_FINISHED)


def test_a_route_to_operator_older_than_the_rule_does_not_end_it() -> None:
    rule = play(ivr("o1", 300), operator("o1", 0))
    assert route(rule, 301) == ("ivr", "o1", Reason.ACTIVE_ORDER)
    rule = play(ivr("o1", 300), operator(None, 0))
    assert route(rule, 301) == ("ivr", "o1", Reason.ACTIVE_ORDER)


def test_an_order_routed_again_after_it_finished_holds_again() -> None:
    rule = play(ivr("o1", 0), operator("o1", 300), ivr("o1", 400))
    assert route(rule, 401) == ("ivr", "o1", Reason.ACTIVE_ORDER)


def test_a_replay_of_a_command_from_before_the_finish_does_not_extend_the_new_hold() -> None:
    # found by the property below: ivr (long), finish, ivr again (short), then the first replayed
    commands = (ivr("o2", 0, ttl=4), operator("o2", 1), ivr("o2", 2, ttl=1))
    rule = play(*commands, *commands)
    assert routing_of(rule, T0 + 2.5).expires_at == T0 + 3
    assert route(rule, 3) == ("operator", "o2", Reason.RULE_EXPIRED)


def test_route_to_operator_for_a_phone_without_a_rule_keeps_nothing_but_the_finish() -> None:
    rule = play(operator("o1", 0))
    assert route(rule, 1) == ("operator", "o1", Reason.ORDER_FINISHED)
    assert expire_rule(rule, T0 + KEEP_S) is None
    rule = play(operator(None, 0))
    assert route(rule, 1) == ("operator", None, Reason.ORDER_FINISHED)
    assert expire_rule(rule, T0 + KEEP_S) is None


def test_a_route_to_ivr_that_arrives_after_a_route_to_operator_for_every_order_stays_ended() -> None:
    rule = play(operator(None, 300), ivr("o1", 0), ivr("o2", 100))
    assert route(rule, 301)[0] == "operator"
    assert route(play(ivr("o3", 400), rule=rule), 401) == ("ivr", "o3", Reason.ACTIVE_ORDER)


def test_a_rule_round_trips_through_its_stored_form() -> None:
    rule = play(ivr("o1", 0), ivr("o2", 10), operator("o2", 20))
    assert RoutingRule.from_json(orjson.loads(dumps(rule))) == rule
    cleared = play(ivr("o1", 0), operator(None, 20))
    assert cleared.cleared is not None and RoutingRule.from_json(orjson.loads(dumps(cleared))) == cleared


# An independent reference: calls go to the IVR at `now` exactly when some order's latest
# route_to_ivr (by time) is later than every route_to_operator naming it (or naming none),
# and the expiry of its route_to_ivr commands since its last finish is still ahead.
def reference_target(commands, now: float) -> str:
    for order in {c.order_id for c in commands if isinstance(c, RouteToIvr)}:
        ends = [c.at for c in commands if isinstance(c, RouteToOperator) and c.order_id in (None, order)]
        last_end = max(ends, default=float("-inf"))
        holds = [c for c in commands if isinstance(c, RouteToIvr) and c.order_id == order and c.at > last_end]
        if holds and max(c.expires_at for c in holds) > now:
            return "ivr"
    return "operator"


command_strategy = st.one_of(
    st.builds(lambda o, at, ttl: ivr(o, at, ttl), st.sampled_from(["o1", "o2", "o3"]), st.integers(0, 100),
              st.integers(1, 200)),
    st.builds(lambda o, at: operator(o, at), st.sampled_from(["o1", "o2", None]), st.integers(0, 100)),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(command_strategy, max_size=12), st.integers(0, 300), st.data())
def test_routing_follows_the_commands_through_duplicates_and_replays(commands, now, data) -> None:
    # one time per command, applied in time order (one phone's commands share a partition),
    # each possibly twice (a producer's retry), then a suffix again (a replay after a crash)
    commands = sorted({c.at: c for c in commands}.values(), key=lambda c: c.at)
    twice = data.draw(st.lists(st.booleans(), min_size=len(commands), max_size=len(commands)))
    arrived = [c for c, again in zip(commands, twice) for c in ([c, c] if again else [c])]
    arrived += commands[data.draw(st.integers(0, len(commands))):]
    rule = play(*arrived)
    want = reference_target(commands, T0 + now)
    assert route(rule, now)[0] == want
    assert (published_rule(rule, T0 + now) is not None) == (want == "ivr")
    assert route(expire_rule(rule, T0 + now) if rule else None, now)[0] == want  # the sweep changes no answer


# --- bindings ---------------------------------------------------------------------------------------


def bind(at: float, number: str = "+74951234567", gateway: str | None = "gw-1", ttl: float = HOUR) -> BindInbound:
    return BindInbound("o1", number, gateway, T0 + at + ttl, T0 + at)


def test_a_call_back_uses_the_number_the_passenger_called_and_its_gateway() -> None:
    binding = apply_binding(None, bind(0))
    assert call_back(binding, T0 + 10, "+74950000000", "default") == \
        call_back(binding, T0 + 10, "+74950000000", "default").__class__("+74951234567", "gw-1", Source.BINDING)


def test_a_binding_without_a_gateway_calls_back_through_the_default_gateway() -> None:
    answer = call_back(apply_binding(None, bind(0, gateway=None)), T0 + 10, "+74950000000", "default")
    assert (answer.caller_number, answer.gateway, answer.source) == ("+74951234567", "default", Source.BINDING)


def test_an_order_without_a_binding_calls_back_from_the_defaults() -> None:
    answer = call_back(None, T0, "+74950000000", "default")
    assert (answer.caller_number, answer.gateway, answer.source, answer.reason) == \
        ("+74950000000", "default", Source.DEFAULT, "no_binding")


def test_an_expired_binding_calls_back_from_the_defaults() -> None:
    answer = call_back(apply_binding(None, bind(0, ttl=60)), T0 + 60, "+74950000000", "default")
    assert (answer.source, answer.reason) == (Source.DEFAULT, "binding_expired")


def test_the_latest_binding_of_an_order_wins_whatever_the_arrival_order() -> None:
    newer, older = bind(10, number="+74957654321"), bind(0)
    assert apply_binding(apply_binding(None, older), newer).inbound_number == "+74957654321"
    assert apply_binding(apply_binding(None, newer), older).inbound_number == "+74957654321"


def test_a_binding_round_trips_through_its_stored_form() -> None:
    binding = apply_binding(None, bind(0))
    assert Binding.from_json(orjson.loads(dumps(binding))) == binding


# --- the stage over in-memory tables -----------------------------------------------------------------


class StoredTable(MemoryTable):
    """A MemoryTable that keeps what a RocksDB table would: each state in its stored form."""

    def __init__(self, decode) -> None:
        super().__init__()
        self.decode = decode

    def put(self, key: str, state) -> None:
        self[key] = self.decode(orjson.loads(dumps(state)))


class Stage:
    """agents/ivr.IvrStage, one partition at a time, tables in memory, outputs kept."""

    def __init__(self) -> None:
        self.rules, self.bindings = StoredTable(RoutingRule.from_json), StoredTable(Binding.from_json)
        self.published: dict[str, object] = {}

    def feed(self, *messages) -> "Stage":
        from app.stages import key_partition
        for message in messages:
            key = message.phone if not isinstance(message, BindInbound) else message.order_id
            self._run(key_partition(key), lambda stage: stage.apply_all([message]))
        return self

    def time_passes(self, at: float) -> "Stage":
        from app.main import settings as app_settings
        for partition in range(app_settings.partitions):
            self._run(partition, lambda stage: stage.time_passes(T0 + at))
        return self

    def _run(self, partition: int, body) -> None:
        outbox = Outbox(app)
        stage = IvrStage(partition, self.rules, self.bindings, outbox)
        body(stage)
        stage.store()
        rules_topic = topics.ivr_routing_rules.get_topic_name()
        for (topic, key), value in outbox.latest_values.items():
            assert topic == rules_topic
            self.published[key] = None if value is None else orjson.loads(value)


def test_the_stage_publishes_the_rule_then_its_tombstone_when_the_order_finishes() -> None:
    stage = Stage().feed(ivr("o1", 0))
    assert stage.published[PHONE]["order_id"] == "o1" and stage.published[PHONE]["target"] == "ivr"
    stage.feed(operator("o1", 10))
    assert stage.published[PHONE] is None
    assert PHONE in stage.rules  # the finish is remembered for GET /routing


def test_the_stage_expires_a_rule_by_stream_time_with_a_tombstone() -> None:
    stage = Stage().feed(ivr("o1", 0, ttl=60))
    stage.time_passes(59)
    assert stage.published[PHONE] is not None and PHONE in stage.rules
    stage.time_passes(60)
    assert stage.published[PHONE] is None and PHONE not in stage.rules


def test_the_stage_cleans_up_expired_bindings() -> None:
    stage = Stage().feed(bind(0, ttl=60))
    stage.time_passes(59)
    assert "o1" in stage.bindings
    stage.time_passes(60)
    assert "o1" not in stage.bindings


def test_a_replayed_command_publishes_its_rule_again() -> None:
    stage = Stage().feed(ivr("o1", 0))
    stage.published.clear()
    stage.feed(ivr("o1", 0))  # a replay after a crash: its record may never have been sent
    assert stage.published[PHONE]["order_id"] == "o1"


def test_targets_are_the_spec_words() -> None:
    assert [str(t) for t in Target] == ["ivr", "operator"] and [str(s) for s in Source] == ["binding", "default"]
