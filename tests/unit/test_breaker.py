"""The circuit breaker the KRT sender drains its queue through: time passed in, every transition pinned."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.breaker import BreakerState, CircuitBreaker

CLOSED, HALF_OPEN, OPEN = BreakerState.CLOSED, BreakerState.HALF_OPEN, BreakerState.OPEN


def opened(now: float = 0.0, threshold: int = 3, base: float = 1.0, cap: float = 8.0) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=threshold, base_backoff_s=base, max_backoff_s=cap)
    for _ in range(threshold):
        assert breaker.allow(now)
        breaker.failed(now)
    assert breaker.state is OPEN
    return breaker


def test_a_new_breaker_is_closed_and_lets_every_call_through():
    breaker = CircuitBreaker()
    assert breaker.state is CLOSED and breaker.level == 0 and breaker.retry_at is None and breaker.backoff_s == 0
    assert all(breaker.allow(t) for t in range(100))


def test_failures_below_the_threshold_keep_it_closed_and_a_success_forgets_them():
    breaker = CircuitBreaker(failure_threshold=3)
    breaker.failed(1.0)
    breaker.failed(2.0)
    assert breaker.state is CLOSED and breaker.consecutive_failures == 2 and breaker.allow(2.0)
    breaker.succeeded(3.0)
    assert breaker.consecutive_failures == 0
    breaker.failed(4.0)
    breaker.failed(5.0)
    assert breaker.state is CLOSED  # not three in a row


def test_the_threshold_of_failures_in_a_row_opens_it_for_the_base_backoff():
    breaker = opened(now=10.0, threshold=3, base=2.0)
    assert breaker.level == 2 and breaker.backoff_s == 2.0 and breaker.retry_at == 12.0
    assert not breaker.allow(10.0)
    assert not breaker.allow(11.999)


def test_after_the_backoff_one_probe_goes_and_the_others_wait():
    breaker = opened(now=10.0, base=2.0)
    assert breaker.allow(12.0)
    assert breaker.state is HALF_OPEN and breaker.level == 1
    assert not breaker.allow(12.5) and not breaker.allow(13.9)


def test_a_successful_probe_closes_it_and_forgets_the_backoff():
    breaker = opened(now=10.0, base=2.0)
    assert breaker.allow(12.0)
    breaker.succeeded(12.1)
    assert breaker.state is CLOSED and breaker.backoff_s == 0 and breaker.consecutive_failures == 0
    assert breaker.allow(12.2)
    breaker.failed(13.0)
    assert breaker.state is CLOSED  # the threshold counts afresh


def test_a_failed_probe_reopens_it_for_twice_as_long_up_to_the_cap():
    breaker = opened(now=0.0, base=1.0, cap=5.0)
    now, backoffs = 0.0, []
    for _ in range(5):
        now = breaker.retry_at or now
        assert breaker.allow(now)
        breaker.failed(now)
        backoffs.append(breaker.backoff_s)
        assert breaker.state is OPEN and breaker.retry_at == now + breaker.backoff_s
    assert backoffs == [2.0, 4.0, 5.0, 5.0, 5.0]


def test_a_probe_that_never_reports_back_is_given_up_after_a_backoff():
    breaker = opened(now=0.0, base=2.0)
    assert breaker.allow(2.0)  # the probe, lost
    assert not breaker.allow(3.9)
    assert breaker.allow(4.0) and breaker.state is HALF_OPEN  # the next probe


def test_a_late_failure_while_open_changes_nothing():
    breaker = opened(now=0.0, base=2.0)
    breaker.failed(1.0)  # a call let through before it opened
    assert breaker.state is OPEN and breaker.backoff_s == 2.0 and breaker.retry_at == 2.0


def test_a_late_success_while_open_closes_it():
    breaker = opened(now=0.0)
    breaker.succeeded(0.5)
    assert breaker.state is CLOSED and breaker.allow(0.5)


def test_a_threshold_of_one_opens_on_the_first_failure():
    breaker = CircuitBreaker(failure_threshold=1, base_backoff_s=0.5, max_backoff_s=0.5)
    breaker.failed(0.0)
    assert breaker.state is OPEN and not breaker.allow(0.4) and breaker.allow(0.5)


@pytest.mark.parametrize("options", [
    {"failure_threshold": 0}, {"base_backoff_s": 0.0}, {"base_backoff_s": 2.0, "max_backoff_s": 1.0}, {"factor": 0.5},
], ids=["no-threshold", "no-backoff", "cap-below-base", "shrinking"])
def test_settings_that_make_no_sense_are_refused(options):
    with pytest.raises(ValueError):
        CircuitBreaker(**options)


def test_states_read_as_words_and_as_gauge_levels():
    assert [(s.value, s.level) for s in BreakerState] == [("closed", 0), ("half_open", 1), ("open", 2)]
    assert "state=open" in repr(opened())


# --- properties over any sequence of calls -------------------------------------------------------

steps = st.lists(st.tuples(st.sampled_from(["allow", "succeeded", "failed"]), st.floats(0.0, 5.0)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps=steps, threshold=st.integers(1, 4), base=st.floats(0.1, 2.0), cap_factor=st.floats(1.0, 20.0))
def test_whatever_happens_the_breaker_keeps_its_promises(steps, threshold, base, cap_factor):
    cap = base * cap_factor
    breaker = CircuitBreaker(failure_threshold=threshold, base_backoff_s=base, max_backoff_s=cap)
    now = 0.0
    for op, dt in steps:
        now += dt
        before, retry_at = breaker.state, breaker.retry_at
        if op == "allow":
            allowed = breaker.allow(now)
            if before is CLOSED:
                assert allowed
            else:
                assert retry_at is not None
                # held back exactly until the backoff has passed; then one call goes, as the probe
                assert allowed == (now >= retry_at)
                assert breaker.state is (HALF_OPEN if allowed else before)
        elif op == "succeeded":
            breaker.succeeded(now)
            assert breaker.state is CLOSED and breaker.consecutive_failures == 0 and breaker.backoff_s == 0
        else:
            failures = breaker.consecutive_failures
            breaker.failed(now)
            if before is CLOSED:
                assert breaker.state is (OPEN if failures + 1 >= threshold else CLOSED)
            else:
                assert breaker.state is OPEN
        assert breaker.backoff_s <= cap + 1e-9
        if breaker.state is CLOSED:
            assert breaker.retry_at is None and breaker.consecutive_failures < threshold
        else:
            assert base - 1e-9 <= breaker.backoff_s and breaker.retry_at is not None and breaker.retry_at <= now + cap + 1e-9


@settings(max_examples=100, deadline=None)
@given(threshold=st.integers(1, 5), base=st.floats(0.1, 3.0), cap_factor=st.floats(1.0, 50.0), probes=st.integers(0, 30))
def test_while_down_the_calls_let_through_are_the_threshold_then_one_probe_per_backoff(threshold, base, cap_factor, probes):
    cap = base * cap_factor
    breaker = CircuitBreaker(failure_threshold=threshold, base_backoff_s=base, max_backoff_s=cap)
    for _ in range(threshold):
        assert breaker.allow(0.0)
        breaker.failed(0.0)
    now, expected = 0.0, base
    for _ in range(probes):
        assert breaker.backoff_s == pytest.approx(expected)
        now = breaker.retry_at or now
        assert not breaker.allow(now - 1e-6)
        assert breaker.allow(now)
        breaker.failed(now)
        expected = min(cap, expected * 2)
    assert breaker.backoff_s == pytest.approx(expected) and breaker.backoff_s <= cap
