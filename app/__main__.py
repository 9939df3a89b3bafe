"""`python -m app …`: worker, ingest, simulate (SPEC.md "CLI")."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "worker":
        # the Faust worker keeps its own options: python -m app worker -l info --web-port 6067
        from app.main import app

        sys.argv = ["switchboard", *argv]
        app.main()
        return 0

    from app import ingest, simulate
    from app.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m app", description="switchboard: live contact-center state")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    verbs.add_parser("worker", help="run a Faust worker (faust worker options follow)")
    ingest.add_arguments(verbs.add_parser("ingest", help="produce a file's records to the input topics"))
    simulate.add_arguments(verbs.add_parser("simulate", help="realistic traffic on the input topics"))
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.verb == "ingest":
        return ingest.main(args, settings)
    if args.verb == "simulate":
        return simulate.main(args, settings)
    parser.error(f"unknown command {args.verb}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
