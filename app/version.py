"""Which build this is: the package's version and the git revision it was built from."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

__all__ = ["REVISION_ENV", "revision", "version"]

REVISION_ENV = "SWITCHBOARD_REVISION"  # set by the image from its GIT_REVISION build argument
ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


@lru_cache(maxsize=1)
def revision() -> str:
    """The image's build argument, else the checkout's HEAD (a short hash, `-dirty` with changes), else "unknown"."""
    given = os.environ.get(REVISION_ENV, "").strip()
    if given:
        return given[:40]
    if not (ROOT / ".git").exists():
        return "unknown"
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head or "unknown"
