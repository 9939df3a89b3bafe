"""The peer row of `make bench`: the windowed work of the pipeline in Quix Streams.

Reads the bench's `qapp-events` records (queue_log lines), keeps the window facts,
repartitions them by queue (`group_by`), and counts them in 60 s tumbling windows by
event time, in Quix's RocksDB state with changelog topics. Done when every fact has
been counted; prints one JSON line: {"events", "facts", "seconds", "events_per_s"},
timed from the first record processed to the last fact counted (as the Faust baselines).

Runs in its own virtualenv (`make bench-peer` makes `.venv-quix`): Quix Streams pins a
pydantic that the service's own does not match. Imports nothing from the service.

    .venv-quix/bin/python bench/quix_peer.py --bootstrap HOST:PORT --topic T --events N --facts F
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import timedelta

from quixstreams import Application
from quixstreams.models import TimestampType

FACT_EVENTS = {"ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "COMPLETECALLER", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY",
               "EXITWITHKEY"}


def stop_when_idle(app: Application, clock: dict, idle_s: float) -> None:
    """Stop the app when no fact was counted for `idle_s` (some were lost: a failed row)."""
    seen, since = -1, time.monotonic()
    while clock["last"] is None:
        time.sleep(0.5)
        if clock["counted"] != seen:
            seen, since = clock["counted"], time.monotonic()
        elif time.monotonic() - since > idle_s:
            app.stop()
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True, help="records on the topic")
    parser.add_argument("--facts", type=int, required=True, help="window facts among them")
    parser.add_argument("--idle-s", type=float, default=60.0, help="give up after this long without progress")
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"quix-peer-{time.time_ns()}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="quix-state-"),
        use_changelog_topics=True,
        loglevel="WARNING",
    )

    def event_time(value, headers, timestamp: float, timestamp_type: TimestampType) -> int:
        try:
            return int(float(value.split(b"|", 1)[0]) * 1000)
        except ValueError:
            return timestamp

    topic = app.topic(args.topic, value_deserializer="bytes", timestamp_extractor=event_time)
    clock = {"first": None, "last": None, "counted": 0}

    def fact(line: bytes):
        if clock["first"] is None:
            clock["first"] = time.perf_counter()
        parts = line.decode("utf-8", "replace").split("|")
        if len(parts) < 5 or parts[4] not in FACT_EVENTS:
            return None
        return {"queue": parts[2], "event": parts[4]}

    def counted(_value) -> None:
        clock["counted"] += 1
        if clock["counted"] >= args.facts:
            clock["last"] = time.perf_counter()
            app.stop()

    sdf = app.dataframe(topic)
    sdf = sdf.apply(fact).filter(lambda v: v is not None)
    sdf = sdf.group_by(lambda v: v["queue"], name="queue")
    # the lines of one queue come from several partitions, a little out of order: a grace
    # period as long as the file keeps every fact counted (the pipeline's are all counted too)
    sdf = sdf.tumbling_window(timedelta(seconds=60), grace_ms=timedelta(hours=24)).count().current()
    sdf = sdf.update(counted)
    watchdog = threading.Thread(target=stop_when_idle, args=(app, clock, args.idle_s), daemon=True)
    watchdog.start()
    app.run()
    if clock["last"] is None:
        print(json.dumps({"error": f"stopped after {clock['counted']} of {args.facts} facts"}))
        return 1
    seconds = clock["last"] - clock["first"]
    print(json.dumps({"events": args.events, "facts": args.facts, "seconds": round(seconds, 3),
                      "events_per_s": round(args.events / seconds, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
