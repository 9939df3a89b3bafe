"""`python -m app check-config`: every setting read from the environment, as a worker would.

Exit code 0 and the settings in effect (secrets masked), one `NAME=value` line each, grouped
by domain; or exit code 2 and one line per problem, naming the variable. Run it in the
environment a deployment gives a worker (`docker compose run --rm worker-1 check-config`,
`kubectl exec ... -- python -m app check-config`) to see what the worker will see.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

from app.config import check_settings, settings_classes

__all__ = ["add_arguments", "main", "masked"]

SECRET_WORDS = ("secret", "token", "password")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print nothing when the settings are good")


def main(args: argparse.Namespace, settings: Any = None) -> int:
    problems = check_settings()
    if problems:
        for problem in problems:
            print(f"switchboard: {problem}", file=sys.stderr)
        print(f"switchboard: {len(problems)} setting(s) to fix; a worker would not start", file=sys.stderr)
        return 2
    if not args.quiet:
        for cls in settings_classes():
            print(f"# {cls.__name__} ({cls.__module__})")
            values = cls()
            for name in cls.model_fields:
                print(f"{name.upper()}={masked(name, getattr(values, name))}")
    return 0


def masked(name: str, value: Any) -> str:
    """A setting's value as it may be shown: secrets as `***`, the password of a URL too."""
    if value is None:
        return ""
    if any(word in name for word in SECRET_WORDS):
        if name == "auth_tokens":  # which roles and users have a token, not the tokens
            return ",".join(f"***={pair.partition('=')[2]}" for pair in str(value).split(",") if pair.strip())
        return "***" if value else ""
    text = str(value)
    if "://" in text:
        parts = urlsplit(text)
        if parts.password is not None:
            return text.replace(f":{parts.password}@", ":***@", 1)
    return text
