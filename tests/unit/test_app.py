"""The Faust app itself: what it does when a domain cannot load."""

from __future__ import annotations

import importlib
import sys

import pytest
from faust.utils import venusian

from app.main import app


def test_a_domain_module_that_fails_to_import_stops_the_start(tmp_path, monkeypatch):
    """Faust's autodiscovery would log a warning and go on without the module (its views
    404, its agents never run); ours fails the start."""
    package = tmp_path / "brokendomain"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("from app.main import no_such_name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("brokendomain")
    try:
        with pytest.raises(ImportError, match="no_such_name"):
            venusian.Scanner().scan(module, onerror=app._on_autodiscovery_error)
    finally:
        sys.modules.pop("brokendomain", None)
        sys.modules.pop("brokendomain.views", None)
