"""A circuit breaker for a sender that drains a queue into an external system (KRT).

While the system answers, every call goes through (`closed`). After `failure_threshold`
failures in a row the breaker opens: calls are held back for a backoff, so a system that
is down is not hammered and the queue simply waits. When the backoff has passed, one
call goes through as a probe (`half_open`): its success closes the breaker, its failure
opens it again for twice as long, up to `max_backoff_s`.

Pure and deterministic: no clock, no I/O, no metrics inside; the caller passes `now`
(any monotonic seconds) and reports each call it was allowed to make:

    if breaker.allow(now):
        try: await send(...)
        except KrtUnavailable: breaker.failed(clock())
        else: breaker.succeeded(clock())

Rules at the edges:
- a success always closes the breaker and forgets the failures and the backoff (even a
  success that comes in late, from a call let through before the breaker opened);
- a failure reported while open (such a late call) changes nothing: the backoff stands;
- a probe that never reports back does not hold the breaker forever: once the current
  backoff has passed again, `allow` lets another probe through.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Optional

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    """Where the breaker is; `level` is its value for a gauge (0 closed, 1 half-open, 2 open)."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def level(self) -> int:
        return _LEVELS[self]


_LEVELS = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitBreaker:
    """Lets calls through while they succeed; holds them back, with exponential backoff, once they fail."""

    def __init__(self, failure_threshold: int = 5, base_backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 factor: float = 2.0) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if not 0 < base_backoff_s <= max_backoff_s:
            raise ValueError("backoffs must satisfy 0 < base_backoff_s <= max_backoff_s")
        if factor < 1:
            raise ValueError("factor must be at least 1 (the backoff never shrinks while failing)")
        self.failure_threshold = failure_threshold
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.factor = factor
        self._state = BreakerState.CLOSED
        self._failures = 0  # in a row, while closed
        self._backoff_s = 0.0  # the current one; 0 while closed
        self._retry_at = 0.0  # open: when the probe may go; half-open: when a silent probe is given up

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def level(self) -> int:
        """The state as a number for a gauge: 0 closed, 1 half-open, 2 open."""
        return self._state.level

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def backoff_s(self) -> float:
        """How long the breaker stays open this time (0 while closed)."""
        return self._backoff_s

    @property
    def retry_at(self) -> Optional[float]:
        """When the next probe may go (None while closed)."""
        return None if self._state is BreakerState.CLOSED else self._retry_at

    def allow(self, now: float) -> bool:
        """Whether a call may go now; a True while open or half-open makes that call the probe."""
        if self._state is BreakerState.CLOSED:
            return True
        if now < self._retry_at:
            return False
        # open and the backoff passed, or half-open with a probe silent for a whole backoff
        self._state = BreakerState.HALF_OPEN
        self._retry_at = now + self._backoff_s
        return True

    def succeeded(self, now: float) -> None:
        """A call went through: closed, with no failures and no backoff remembered."""
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._backoff_s = 0.0
        self._retry_at = 0.0

    def failed(self, now: float) -> None:
        """A call failed: counted while closed (opening at the threshold); a failed probe reopens for longer."""
        if self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open(now, self.base_backoff_s)
        elif self._state is BreakerState.HALF_OPEN:
            self._open(now, min(self.max_backoff_s, self._backoff_s * self.factor))
        # open: a late answer of a call let through before; the running backoff stands

    def _open(self, now: float, backoff_s: float) -> None:
        self._state = BreakerState.OPEN
        self._backoff_s = backoff_s
        self._retry_at = now + backoff_s

    def __repr__(self) -> str:
        return (f"CircuitBreaker(state={self._state.value}, failures={self._failures}, backoff_s={self._backoff_s:g}, "
                f"retry_at={self.retry_at})")
