"""`python -m app …`: worker, ingest, simulate, check-config and the doubles (SPEC.md "CLI").

Every command but `worker` is a module with `add_arguments(parser)` and `main(args,
settings) -> exit code`, named in `COMMANDS` (the one list) and imported only when run:
`app/` imports no domain, and a double of an external system lives in `dev/`.

Before any command runs, the settings it needs are read from the environment (a worker's:
every domain's too); a wrong one stops it with one line per problem, naming the variable
(a JSON log line unless `LOG_FORMAT=text`), and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

__all__ = ["COMMANDS", "SETTINGS_ERROR", "main"]

SETTINGS_ERROR = 2  # the exit code of a start refused for its settings

COMMANDS = {  # verb: (module, help)
    "ingest": ("app.ingest", "produce a file's records to the input topics"),
    "simulate": ("dev.simulate", "realistic traffic on every input topic (an Asterisk, a CRM, drivers, chats, orders)"),
    "check-config": ("app.checkconfig", "read every setting from the environment: the problems, or the settings in effect"),
    "krt-sandbox": ("dev.krt_sandbox", "the stand-in of the city's KRT API (token, verify an ID, report a status)"),
    "ami-double": ("dev.ami_double", "the stand-in of Asterisk's manager interface (QueuePause, QueueStatus, events)"),
    "personal": ("dev.personal", "the stand-in of the `personal` service (licence numbers by pd id)"),
}
NEEDS_EVERY_DOMAIN = {"worker", "check-config"}  # the others read the shared settings only
DOUBLES = {"krt-sandbox", "ami-double", "personal"}  # stand-ins: they read no setting
READS_ITS_OWN = DOUBLES | {"check-config"}  # no settings handed in, none checked before (check-config checks them itself)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = argv[0] if argv else ""
    if verb not in READS_ITS_OWN and not {"-h", "--help"} & set(argv[:2]):
        problems = _settings_problems(every_domain=verb in NEEDS_EVERY_DOMAIN)
        if problems:
            _refuse(problems)
            return SETTINGS_ERROR
    if verb == "worker":
        # the Faust worker keeps its own options: python -m app worker -l info --web-port 6067
        from app.main import START_REFUSED, app, settings

        # JSON logs are JSON from the first line: Faust's banner and spinner go to the console otherwise
        quiet = ["--quiet"] if settings.log_format == "json" else []
        sys.argv = ["switchboard", *quiet, *argv]
        try:
            app.main()
        except SystemExit as exc:  # Faust's worker always ends so
            code = exc.code if isinstance(exc.code, int) else 1
        else:
            code = 0
        return START_REFUSED if getattr(app, "start_refused", None) else code

    parser = argparse.ArgumentParser(prog="python -m app", description="switchboard: live contact-center state")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    verbs.add_parser("worker", help="run a Faust worker (faust worker options follow)")
    for name, (module, help_text) in COMMANDS.items():
        sub = verbs.add_parser(name, help=help_text)
        if verb == name:  # only the command asked for is imported
            importlib.import_module(module).add_arguments(sub)
    args = parser.parse_args(argv)
    shared: object = None
    if args.verb not in READS_ITS_OWN:
        from app.settings import get_settings

        shared = get_settings()
    return int(importlib.import_module(COMMANDS[args.verb][0]).main(args, shared))


def _settings_problems(every_domain: bool) -> list[str]:
    from app.config import check_settings
    from app.settings import Settings

    return check_settings(classes=None if every_domain else [Settings])


def _refuse(problems: list[str]) -> None:
    """One line per problem on stderr, in the log format asked for (JSON unless LOG_FORMAT=text)."""
    from app.logs import JsonFormatter

    text = os.environ.get("LOG_FORMAT", "json").strip().lower() == "text"
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s") if text else JsonFormatter()
    for problem in problems:
        setting = problem.split(":", 1)[0].split(" ", 1)[0]
        record = logging.makeLogRecord({"name": "switchboard.settings", "levelno": logging.ERROR, "levelname": "ERROR",
                                        "msg": f"cannot start: {problem}", "setting": setting})
        print(formatter.format(record), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
