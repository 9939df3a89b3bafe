"""How far behind this worker is: the records it has yet to read, per topic and partition."""

from __future__ import annotations

from typing import Any

import faust

from app import metrics
from app.rawinput import raw_inputs

__all__ = ["consumed_topics", "consumer_backlog"]

_lag_labels: set[tuple[str, str]] = set()


def consumer_backlog(app: faust.App, topic_names: tuple[str, ...]) -> int:
    """Records this worker has not yet read from its active partitions of `topic_names`;
    sets the lag gauge per topic and partition (and drops partitions no longer owned)."""
    consumer: Any = app.consumer  # its offsets have no public accessor
    total = 0
    labels: set[tuple[str, str]] = set()
    for tp in app.assignor.assigned_actives():
        if tp.topic not in topic_names:
            continue
        try:
            end = consumer.highwater(tp)
        except Exception:  # no fetch yet: nothing known about this partition
            continue
        if end is None:
            continue
        read = consumer._read_offset.get(tp)  # faust keeps no public accessor for this
        position = read + 1 if read is not None else (consumer._committed_offset.get(tp) or 0)
        backlog = max(0, end - position)
        label = (tp.topic, str(tp.partition))
        metrics.consumer_lag.labels(*label).set(backlog)
        labels.add(label)
        total += backlog
    for gone in _lag_labels - labels:
        try:
            metrics.consumer_lag.remove(*gone)
        except KeyError:
            pass
    _lag_labels.clear()
    _lag_labels.update(labels)
    return total


def consumed_topics(app: faust.App) -> tuple[str, ...]:
    """Every topic this app reads: its agents' (each domain's inputs and internal topics)
    and its raw inputs' (app/rawinput.py)."""
    names = {name for agent in app.agents.values() for name in getattr(agent.channel, "topics", ())}
    return tuple(sorted(names | set(raw_inputs(app))))
