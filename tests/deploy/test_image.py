"""The image and the lock files: the same exact versions in the image, `make install` and CI,
the base image pinned, the dependencies installed only from the lock, nothing outside it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement

from tests.deploy.conftest import ROOT, dockerfile_build_copies

LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"


def pins(path) -> dict[str, tuple[str, str | None, int]]:
    """name -> (version, marker, number of hashes) of a hashed lock file."""
    found = {}
    for block in re.split(r"\n(?=\S)", path.read_text()):
        head = block.splitlines()[0]
        if head.startswith("#") or not head.strip():
            continue
        requirement, _, marker = head.rstrip(" \\").partition(" ; ")
        name, _, version = requirement.partition("==")
        found[_normal(name)] = (version, marker or None, block.count("--hash=sha256:"))
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_pin_is_exact_and_hashed():
    for path in (LOCK, DEV_LOCK):
        for name, (version, _, hashes) in pins(path).items():
            assert re.fullmatch(r"[\w.+!-]+", version), f"{path.name}: {name} is not pinned exactly"
            assert hashes >= 1, f"{path.name}: {name} has no hash"


def test_the_locks_satisfy_pyproject_and_agree_with_each_other():
    runtime, dev = pins(LOCK), pins(DEV_LOCK)
    wanted = {"": project()["dependencies"], **project()["optional-dependencies"]}
    for extra, requirements in wanted.items():
        for text in requirements:
            requirement = Requirement(text)
            name = _normal(requirement.name)
            assert name in dev and requirement.specifier.contains(dev[name][0], prereleases=True), (extra, text)
            if extra in ("", "build"):
                assert name in runtime, f"the image's lock lacks {text}"
    for name, (version, _, _) in runtime.items():
        assert dev[name][0] == version, f"{name}: {version} in the image, {dev[name][0]} in make install and CI"


def test_this_environment_is_installed_from_the_lock():
    """What `make install` did: every package of requirements-dev.lock at its version here."""
    wrong = {}
    for name, (version, marker, _) in pins(DEV_LOCK).items():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert wrong == {}, "run `make install` (locked, installed)"


def test_the_image_installs_only_from_the_lock_on_a_pinned_base():
    dockerfile = (ROOT / "Dockerfile").read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), f"{base} floats"
    installs = re.findall(r"pip install ([^\n&]+)", dockerfile)
    assert installs[0].split() == ["--require-hashes", "--no-deps", "-r", "requirements.lock"]
    assert all("--no-deps" in line for line in installs), "every install takes its dependencies from the lock alone"
    copied = [source for sources, _ in dockerfile_build_copies(ROOT / "Dockerfile") for source in sources]
    assert copied[0] == "requirements.lock" and "pyproject.toml" in copied and "dev" in copied
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert "SWITCHBOARD_REVISION=${GIT_REVISION}" in dockerfile


def test_make_install_and_ci_use_the_dev_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r requirements-dev.lock" in makefile
    assert "make test" in (ROOT / ".ci/run").read_text()
