"""README.md against the code (issue 22): every setting documented with its default, one
settings table per domain, every route in its system's endpoint table, every link inside
the repository.

Plain and fast: the settings come from `app.config` (the pydantic classes; nothing
connects), the routes from the source of `web/*.py` (read with `ast`, nothing imported), the
documents are read as markdown text.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

from app.config import env_names, settings_classes

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
WEB = ROOT / "web"
DOCUMENTS = [README, ROOT / "k8s" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIGURATION = "Configuration"  # the README chapter (`## Configuration`) holding the settings tables
FIVE_SYSTEMS = ("callcenter", "operatorstatus", "deptrans", "chat", "ivr")  # web/<module>.py of each
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"`([^`]*)`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
EXTERNAL = ("http://", "https://", "mailto:", "#")
OUTSIDE = re.compile(r"(?:^|[\s(`'\"])\.\./")
METHOD_PATH = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`?]*)")


# --- markdown, as far as these checks need it ---------------------------------------------------


class Section(NamedTuple):
    title: str  # its heading
    chapter: str  # the `##` heading it is under (itself, for a `##`)
    lines: list[str]  # the prose lines (no fenced code) up to the next heading


def prose(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield line


def sections(text: str) -> list[Section]:
    found = [Section("", "", [])]
    chapter = ""
    for line in prose(text):
        heading = HEADING.match(line)
        if heading:
            level, title = len(heading.group(1)), heading.group(2)
            if level <= 2:
                chapter = title
            found.append(Section(title, chapter, []))
        else:
            found[-1].lines.append(line)
    return found


def table_rows(lines: list[str]) -> list[str]:
    return [line for line in lines if line.lstrip().startswith("|") and not set(line.strip()) <= set("|-: ")]


# --- (a) settings ---------------------------------------------------------------------------


def _documented(name: str, row: str) -> bool:
    """The README's convention: "`NAME` [default]" in a settings table's row."""
    return f"`{name}` [" in row


def _settings_sections() -> list[Section]:
    found = [s for s in sections(README.read_text()) if s.chapter == CONFIGURATION]
    assert found, f"README.md has no '## {CONFIGURATION}' chapter"
    return found


def test_every_setting_is_in_a_settings_table_with_its_default():
    rows = [row for s in _settings_sections() for row in table_rows(s.lines)]
    missing = sorted(name for name in env_names() if not any(_documented(name, row) for row in rows))
    assert not missing, (f"settings without a row \"`NAME` [default] | meaning\" under '## {CONFIGURATION}' "
                         f"in README.md: {', '.join(missing)}")


def test_each_settings_class_has_a_table_of_its_own():
    """Shared settings and each domain's under their own heading: one section holds every
    variable of a class, and no two classes share one."""
    tables = [(s.title, table_rows(s.lines)) for s in _settings_sections()]
    homes = {}
    for cls in settings_classes():
        names = [field.upper() for field in cls.model_fields]
        held = [(sum(any(_documented(n, row) for row in rows) for n in names), title) for title, rows in tables]
        count, title = max(held)
        assert count == len(names), (f"{cls.__module__}.{cls.__name__}: no one section of README.md's "
                                     f"'{CONFIGURATION}' documents all its {len(names)} variables "
                                     f"(the best, '{title}', has {count})")
        homes[f"{cls.__module__}.{cls.__name__}"] = title
    shared = {title for title in homes.values() if list(homes.values()).count(title) > 1}
    assert not shared, f"settings classes sharing one table in README.md: {homes}"


def test_the_revision_variable_is_documented_as_not_a_setting():
    from app.version import REVISION_ENV

    assert f"`{REVISION_ENV}`" in README.read_text()


# --- (b) links -----------------------------------------------------------------------------


def _link_targets(path: Path) -> Iterator[tuple[str, str]]:
    """(line, target) of every markdown link outside code (fenced blocks and code spans)."""
    for line in prose(path.read_text()):
        text = CODE_SPAN.sub("", line)
        for target in INLINE_LINK.findall(text):
            yield line, target
        reference = REFERENCE_LINK.match(text)
        if reference:
            yield line, reference.group(1)


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d.exists()], ids=lambda d: str(d.relative_to(ROOT)))
def test_every_relative_link_points_inside_the_repository_at_something_that_exists(document):
    broken = []
    for line, target in _link_targets(document):
        if target.startswith(EXTERNAL):
            continue
        relative = target.split("#", 1)[0].split("?", 1)[0]
        resolved = ((ROOT / relative.lstrip("/")) if relative.startswith("/") else (document.parent / relative)).resolve()
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file or directory")
    assert not broken, f"{document.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d.exists()], ids=lambda d: str(d.relative_to(ROOT)))
def test_no_document_points_outside_the_repository_in_prose_either(document):
    """`../shared/SPEC.md` in backticks is as much a dead end for a reader as a link."""
    outside = [line.strip() for line in prose(document.read_text()) if OUTSIDE.search(line)]
    assert not outside, f"{document.relative_to(ROOT)} refers to paths above its directory: {outside}"


def test_the_readme_links_the_contract_and_the_kubernetes_guide():
    targets = {target for _, target in _link_targets(README)}
    assert {"docs/contract.md", "k8s/README.md"} <= targets


# --- (c) endpoint tables ---------------------------------------------------------------------


class Route(NamedTuple):
    method: str
    path: str  # with `{}` for every path parameter

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def normalised(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _value(node: ast.expr, constants: dict[str, str], where: str) -> str:
    """The route string of `@app.page(...)`: a literal, a module constant, or their sum."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _value(node.left, constants, where) + _value(node.right, constants, where)
    raise AssertionError(f"{where}: a route this test cannot read ({ast.unparse(node)}); teach `_value` its form")


def _methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> set[str]:
    """The HTTP methods a view handles, its bases in the same module included."""
    own = {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name in HTTP_METHODS}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            own |= _methods(classes[base.id], classes)
    return own


def registered_routes() -> dict[str, set[Route]]:
    """web/<module>.py -> the routes it registers with `@app.page(...)`."""
    found: dict[str, set[Route]] = {}
    for source in sorted(WEB.glob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                     and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                     for target in node.targets if isinstance(target, ast.Name)}
        classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
        for cls in classes.values():
            for decorator in cls.decorator_list:
                if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                        and decorator.func.attr == "page"):
                    continue
                where = f"web/{source.name}:{decorator.lineno}"
                path = normalised(_value(decorator.args[0], constants, where))
                methods = _methods(cls, classes)
                assert methods, f"{where}: view {cls.name} handles no HTTP method this test knows"
                found.setdefault(source.stem, set()).update(Route(m.upper(), path) for m in methods)
    return found


def documented_routes() -> list[tuple[str, set[Route]]]:
    """(heading, the routes named in its tables' rows) of each README section."""
    answer = []
    for section in sections(README.read_text()):
        routes = {Route(method, normalised(path)) for row in table_rows(section.lines)
                  for span in CODE_SPAN.findall(row) for method, path in METHOD_PATH.findall(span)}
        answer.append((section.title, routes))
    return answer


def test_the_route_reader_finds_every_system():
    routes = registered_routes()
    assert set(FIVE_SYSTEMS) <= set(routes), f"web modules with routes: {sorted(routes)}"
    assert Route("GET", "/api/v1/chat/chats/{}/messages") in routes["chat"]  # the chat's prefixed routes are read
    assert Route("POST", "/driver/v1/deptrans-status/v1/id") in routes["deptrans"]


@pytest.mark.parametrize("module", sorted(registered_routes()))
def test_each_system_has_an_endpoint_table_naming_every_route(module):
    """Every `METHOD /path` a web module registers, internal ones (worker to worker) too, is
    in a table row of one README section: the system's endpoint table."""
    routes = registered_routes()[module]
    documented = documented_routes()
    anywhere = set().union(*(found for _, found in documented))
    missing = sorted(str(r) for r in routes - anywhere)
    assert not missing, f"web/{module}.py: routes in no endpoint table of README.md: {', '.join(missing)}"
    homes = [title for title, found in documented if routes <= found]
    assert homes, (f"web/{module}.py: its routes are documented, but not in one section's table "
                   f"(each system has its own endpoint table): {sorted(map(str, routes))}")
