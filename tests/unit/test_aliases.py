"""One operator, several names (OPERATOR_ALIASES): tables/callcenter/aliases.py, and a
callback-agent log through the worker's own stages."""

from __future__ import annotations

import pytest

from tables.callcenter.aliases import OperatorAliases, canonical_agent
from tables.callcenter.events import CallEntered, MemberAdded
from tables.callcenter.store import topics
from tests.unit.panel import Panel

T0 = 1_700_000_000.0
CALLBACK = OperatorAliases.of([(r"Local/(\d+)@callback-agent", r"Agent/\1"), (r"PJSIP/(\d+)", r"SIP/\1")])


@pytest.mark.parametrize(("name", "canonical"), [
    ("Local/1127@callback-agent", "Agent/1127"),
    ("PJSIP/1127", "SIP/1127"),
    ("Agent/1127", "Agent/1127"),  # already canonical
    ("SIP/1127", "SIP/1127"),
    ("Local/1127@callback-agent/n", "Local/1127@callback-agent/n"),  # a rule matches the whole name only
    ("NONE", "NONE"),
])
def test_each_name_has_one_canonical_id(name: str, canonical: str) -> None:
    assert CALLBACK.canonical(name) == canonical


def test_the_first_rule_that_matches_wins() -> None:
    aliases = OperatorAliases.of([(r"SIP/1(\d+)", r"op-\1"), (r"SIP/(\d+)", r"any-\1")])
    assert (aliases.canonical("SIP/100"), aliases.canonical("SIP/200")) == ("op-00", "any-200")


def test_a_bad_pattern_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match=r"operator alias pattern '\('"):
        OperatorAliases.of([("(", "x")])


def test_events_keep_everything_but_the_agent_name() -> None:
    added = MemberAdded(T0, "support", "Local/1127@callback-agent", False)
    assert canonical_agent(added, CALLBACK) == MemberAdded(T0, "support", "Agent/1127", False)
    entered = CallEntered(T0, "c1", "support", "+7916", 1)
    assert canonical_agent(entered, CALLBACK) is entered  # no agent: as it is
    assert canonical_agent(added, OperatorAliases()) is added  # no rules: as it is


def test_a_callback_agent_log_shows_one_operator_everywhere() -> None:
    panel = Panel(T0, CALLBACK).feed(
        "+0|NONE|support|Local/1127@callback-agent|ADDMEMBER|",
        "+5|c1|support|NONE|ENTERQUEUE||+7916|1",
        "+9|c1|support|Agent/1127|CONNECT|4|x|2",
    )
    assert panel.counts("support") == {"logged_in": 1, "paused": 0, "on_call": 1, "available": 0}
    panel.feed("+99|c1|support|Agent/1127|COMPLETEAGENT|4|90|1")
    assert panel.counts("support") == {"logged_in": 1, "paused": 0, "on_call": 0, "available": 1}
    assert set(panel.operators) == {"Agent/1127"}
    assert panel.operators["Agent/1127"].calls_today == 1
    published = panel.published[(topics.operator_status.get_topic_name(), "Agent/1127")]
    assert published["state"] == "available"  # (its `calls_today` is of the real today: T0 is 2023)
    assert (topics.operator_status.get_topic_name(), "Local/1127@callback-agent") not in panel.published
    assert panel.published[(topics.call_status.get_topic_name(), "c1")]["agent"] == "Agent/1127"


def test_without_aliases_the_two_names_are_two_operators() -> None:
    panel = Panel(T0, OperatorAliases()).feed(
        "+0|NONE|support|Local/1127@callback-agent|ADDMEMBER|",
        "+9|c1|support|Agent/1127|CONNECT|4|x|2",
    )
    assert set(panel.operators) == {"Local/1127@callback-agent", "Agent/1127"}


def test_the_setting_is_read_from_the_environment_as_json(monkeypatch) -> None:
    from tables.callcenter.settings import CallCenterSettings

    monkeypatch.setenv("OPERATOR_ALIASES", r'[["Local/(\\d+)@callback-agent", "Agent/\\1"]]')
    aliases = OperatorAliases.of(CallCenterSettings().operator_aliases)
    assert aliases.canonical("Local/1127@callback-agent") == "Agent/1127"
    monkeypatch.setenv("OPERATOR_ALIASES", '[["(", "x"]]')
    with pytest.raises(ValueError, match="operator alias pattern"):
        CallCenterSettings()
