"""Every setting of the service, found in one place and checked before anything starts.

The shared `Settings` live in `app/settings.py`; each domain declares its own in
`tables/<domain>/settings.py` (a `DomainSettings`). `settings_classes` finds them all the
way Faust's autodiscovery finds agents and views (by walking the package, naming no
domain), so `check_settings` can read the whole environment before a worker imports
anything: a wrong or missing setting then stops the start with one line naming the
variable and what it expects, never a traceback at import.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from functools import lru_cache
from typing import Iterable, Mapping, Optional

from pydantic import ValidationError

from app.settings import DomainSettings, Settings

__all__ = ["PLACEHOLDER", "SETTINGS_PACKAGE", "check_settings", "env_names", "settings_classes"]

SETTINGS_PACKAGE = "tables"  # every `<package>.<domain>.settings` module is read
PLACEHOLDER = "REPLACE-ME"  # the deployment files' placeholders (k8s/): a value holding it is refused


@lru_cache(maxsize=1)
def settings_classes() -> tuple[type[DomainSettings], ...]:
    """The shared settings, then each domain's, in package order."""
    found: list[type[DomainSettings]] = [Settings]
    package = importlib.import_module(SETTINGS_PACKAGE)
    for domain in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg):
        name = f"{SETTINGS_PACKAGE}.{domain}.settings"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a domain without settings of its own
            raise
        found.extend(obj for obj in vars(module).values()
                     if isinstance(obj, type) and issubclass(obj, DomainSettings) and obj.__module__ == name)
    return tuple(found)


def env_names() -> dict[str, type[DomainSettings]]:
    """Every environment variable the service reads -> the settings class that reads it."""
    return {field.upper(): cls for cls in settings_classes() for field in cls.model_fields}


def check_settings(environ: Optional[Mapping[str, str]] = None,
                   classes: Optional[Iterable[type[DomainSettings]]] = None) -> list[str]:
    """What is wrong with the settings in `environ` (default: this process's), one line each,
    each starting with the variable's name; empty when every class accepts them."""
    env = dict(os.environ if environ is None else environ)
    problems = [f"{name}: still the placeholder {PLACEHOLDER!r} of the deployment files; set it "
                f"(or leave it empty where the setting is optional)"
                for name in sorted(env_names()) if PLACEHOLDER in env.get(name, "")]
    if problems:
        return problems
    saved = dict(os.environ)
    try:
        if environ is not None:
            os.environ.clear()
            os.environ.update(env)
        for cls in settings_classes() if classes is None else classes:
            try:
                cls()
            except ValidationError as exc:  # a variable two domains read (AMI_URL) is told once
                problems.extend(line for line in _lines(cls, exc) if line not in problems)
    finally:
        if environ is not None:
            os.environ.clear()
            os.environ.update(saved)
    return problems


def _lines(cls: type[DomainSettings], exc: ValidationError) -> list[str]:
    """One line per error, naming the variable; never the value (it may be a secret)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        message = str(error.get("msg", "invalid"))
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        location = error.get("loc") or ()
        if location:
            lines.append(f"{str(location[0]).upper()}: {message}")
        elif message.split(" ", 1)[0].rstrip(":") in env_names():  # a check across settings names them itself
            lines.append(message)
        else:
            lines.append(f"{cls.__name__}: {message}")
    return lines
