"""`python -m app …`: worker, ingest, simulate, krt-sandbox (SPEC.md "CLI").

Every command but `worker` is a module with `add_arguments(parser)` and `main(args,
settings) -> exit code`, named in `COMMANDS` (the one list) and imported only when run:
`app/` imports no domain, and a double of an external system lives in `dev/`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "main"]

COMMANDS = {  # verb: (module, help)
    "ingest": ("app.ingest", "produce a file's records to the input topics"),
    "simulate": ("dev.simulate", "realistic call-center traffic on qapp-events (an Asterisk double)"),
    "krt-sandbox": ("dev.krt_sandbox", "the stand-in of the city's KRT API (token, verify an ID, report a status)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "worker":
        # the Faust worker keeps its own options: python -m app worker -l info --web-port 6067
        from app.main import app

        sys.argv = ["switchboard", *argv]
        app.main()
        return 0

    from app.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m app", description="switchboard: live contact-center state")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    verbs.add_parser("worker", help="run a Faust worker (faust worker options follow)")
    for verb, (module, help_text) in COMMANDS.items():
        sub = verbs.add_parser(verb, help=help_text)
        if argv and argv[0] == verb:  # only the command asked for is imported
            importlib.import_module(module).add_arguments(sub)
    args = parser.parse_args(argv)
    return int(importlib.import_module(COMMANDS[args.verb][0]).main(args, get_settings()))


if __name__ == "__main__":
    sys.exit(main())
