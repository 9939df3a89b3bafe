"""`make profile`: where one worker's time goes while it replays a busy call center.

Starts a broker (free ports) and one worker, produces the throughput rows' records
(`bench/load.py`), and records the worker with py-spy (`pip install -e '.[profile]'`)
from just before the first record until every record has been read. Prints the main
thread's top functions, by their own time and with what they call, and keeps the raw
samples (`--out`, for flamegraph tools). py-spy slows the worker down: read shares of
time, not rates.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import lines_for
from bench.pipeline import _settle, as_records
from tests.harness import Broker, Deployment, Worker, free_port, http_get, produce

FRAME = re.compile(r"(.*) \((.*?):(\d+)\)")
# the frames every sample passes through (CLI, worker, event loop): no news in a summary
OUTER = re.compile(r"\((click/|<frozen runpy>|mode/worker.py|faust/cli/|app/__main__.py|faust/app/base.py|asyncio/)")


def frame_name(frame: str) -> str:
    match = FRAME.match(frame)
    if match is None:
        return frame
    function, path, _ = match.groups()
    return f"{function} ({path.split('site-packages/')[-1].split('/switchboard/')[-1]})"


def summary(raw: Path, top: int) -> str:
    """The main thread's functions by own and inclusive share of the samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or stack.startswith("Thread._bootstrap"):  # the consumer's thread: mostly idle
            continue
        n = int(count)
        total += n
        names = [frame_name(f) for f in stack.split(";")]
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples of the main thread", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines += ["", "with what it calls (the event loop's frames left out):"]
    shown = [(name, n) for name, n in inclusive.most_common() if not OUTER.search(name)][: top * 2]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in shown]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "switchboard-profile.txt")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed: pip install -e '.[profile]'", file=sys.stderr)
        return 2
    lines = lines_for(args.events, seed=1)
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-profile-"))
    broker = Broker(port=free_port(), directory=workdir / "kafka")
    broker.start()
    try:
        deployment = Deployment(broker=broker, workdir=workdir, extra_env={"LOG_LEVEL": "warning"})
        worker = Worker(deployment, 1).start().wait_ready(120)
        _settle([worker])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        recorder = subprocess.Popen([spy, "record", "-p", str(worker.process.pid), "-f", "raw", "-o", str(args.out),
                                     "-r", str(args.rate), "--nonblocking"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        produce(broker.bootstrap, deployment.topic("qapp-events"), as_records(lines))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:  # until every stage has read everything
            metrics = http_get(worker.url + "/metrics", timeout=5)[1]
            text = metrics if isinstance(metrics, str) else ""
            read = sum(float(v) for v in re.findall(r'switchboard_events_in_total\{topic="[^"]*qapp-events"\} (\S+)', text))
            lag = sum(float(v) for v in re.findall(r"switchboard_consumer_lag_records\{[^}]*\} (\S+)", text))
            if read >= len(lines) and lag == 0:
                break
            time.sleep(0.5)
        recorder.send_signal(2)  # py-spy writes its samples on SIGINT
        recorder.wait(60)
        worker.stop()
    finally:
        broker.stop()
    print(summary(args.out, args.top))
    print(f"\nraw samples: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
