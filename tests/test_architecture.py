"""The shape of the code: imports between apps run one way, no app's modules import each other in
a circle, the rooms inside tasks/ are layered, a lazy import says why, and modules stay small.

Allowed directions between apps are in ALLOWED_IMPORTS (docs/architecture.md draws them).

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a lazy import is
still a dependency, and a wrong-way one is usually a cycle being dodged.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

# The checks parse every module once between them: one worker runs them all.
pytestmark = pytest.mark.xdist_group("architecture")

ROOT = Path(__file__).resolve().parents[1]

# App -> the other apps it may import. An app missing here fails the test: say where it stands.
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "oauth_tokens": frozenset({"common"}),
    "accounts": frozenset({"common", "oauth_tokens"}),
    "gateway": frozenset({"common", "oauth_tokens"}),
    "environments": frozenset({"common", "accounts"}),
    "tasks": frozenset(
        {"common", "oauth_tokens", "accounts", "gateway", "hosting", "environments"}
    ),
    # On top: they listen to the lower apps' signals; nothing imports them.
    "notifications": frozenset({"common", "oauth_tokens", "accounts", "tasks"}),
    "usage": frozenset({"common", "oauth_tokens", "accounts", "gateway", "tasks"}),
    # On top: the JSON API and GitHub mentions act through the tasks', accounts', hosting's and
    # environments' services; nothing imports it.
    "api": frozenset({"common", "oauth_tokens", "accounts", "tasks", "hosting", "environments"}),
    # The egress rules it applies to the worker's git live in common (common/netpolicy/).
    "hosting": frozenset({"common"}),
}
# Wiring: settings, urls, the Celery app. It may import every app.
ANYTHING_GOES = frozenset({"config"})
# Top-level folders that are not apps and are not checked (tests import whatever they test).
NOT_APPS = frozenset({"tests", "bench", "scripts", "agent", "static", "templates", "docs"})
SKIPPED_DIRS = frozenset({".venv", "venv", ".git", "node_modules", "migrations", "__pycache__"})

MAX_MODULE_LINES = 450
# One cohesive thing each; say why when adding to this list.
LONG_MODULES_ALLOWED = frozenset(
    {
        "oauth_tokens/formats.py",  # THE token parser and CLI-file renderer, kept whole on purpose
    }
)


@dataclass(frozen=True)
class WrongWayImport:
    path: str  # relative to the project root
    line: int
    importer: str
    imported: str
    statement: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        return f"{where}: {self.importer} imports {self.imported} ({self.statement})"


def _is_test_file(path: Path) -> bool:
    return path.name.startswith("test_") or path.name == "conftest.py" or "tests" in path.parts


def project_modules(root: Path) -> list[Path]:
    """The project's own .py files, without tests, migrations or virtualenvs."""
    found = []
    # Skipped folders are pruned, not filtered: walking a virtualenv costs seconds per test.
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d not in SKIPPED_DIRS]
        for name in files:
            path = Path(folder) / name
            if name.endswith(".py") and not _is_test_file(path.relative_to(root)):
                found.append(path)
    return sorted(found)


def _tree(path: Path) -> ast.Module:
    stat = path.stat()
    return _parsed(path, stat.st_mtime_ns, stat.st_size)


@cache
def _parsed(path: Path, mtime_ns: int, size: int) -> ast.Module:
    """One parse per file version for all the checks in a process (they share one worker)."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _package_of(relative: Path) -> list[str]:
    """The dotted package a module sits in, as a list (``a/b/c.py`` -> ``["a", "b"]``)."""
    parts = list(relative.with_suffix("").parts)
    return parts[:-1]  # for a package's __init__.py the package itself, as Python resolves it


def _imported_modules(tree: ast.Module, relative: Path) -> list[tuple[int, str, str]]:
    """(line, absolute module name, source text) for every import in the module."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((node.lineno, alias.name, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            names = ", ".join(alias.name for alias in node.names)
            if node.level == 0:
                module = node.module or ""
            else:
                package = _package_of(relative)
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, *([node.module] if node.module else [])])
            dots = "." * node.level
            out.append((node.lineno, module, f"from {dots}{node.module or ''} import {names}"))
    return out


def wrong_way_imports(
    root: Path,
    allowed: dict[str, frozenset[str]] = ALLOWED_IMPORTS,
) -> tuple[list[WrongWayImport], list[str]]:
    """Each import from one app into another that ``allowed`` does not permit, and apps missing
    from ``allowed``."""
    apps = set(allowed) | ANYTHING_GOES
    unknown_apps: set[str] = set()
    found = []
    for path in project_modules(root):
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            continue  # manage.py, the root conftest: wiring
        importer = relative.parts[0]
        if importer in NOT_APPS or importer in ANYTHING_GOES:
            continue
        if importer not in allowed:
            unknown_apps.add(importer)
            continue
        for line, module, statement in _imported_modules(_tree(path), relative):
            imported = module.split(".")[0]
            if imported in apps and imported != importer and imported not in allowed[importer]:
                found.append(WrongWayImport(str(relative), line, importer, imported, statement))
    found.sort(key=lambda item: (item.path, item.line))
    return found, sorted(unknown_apps)


def test_imports_between_apps_run_one_way() -> None:
    found, unknown_apps = wrong_way_imports(ROOT)
    problems = [str(item) for item in found]
    problems += [
        f"{app}/: an app the import-direction check does not know; add it to ALLOWED_IMPORTS "
        "in tests/test_architecture.py and to docs/architecture.md"
        for app in unknown_apps
    ]
    assert not problems, "Imports that run the wrong way between apps:\n" + "\n".join(problems)


def test_no_module_is_too_long() -> None:
    too_long = []
    for path in project_modules(ROOT):
        relative = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES and relative not in LONG_MODULES_ALLOWED:
            too_long.append(f"{relative}: {lines} lines")
    assert not too_long, (
        f"Modules over {MAX_MODULE_LINES} lines (split them by job, or allow-list one cohesive "
        "thing in tests/test_architecture.py with the reason):\n" + "\n".join(too_long)
    )


# --- Inside tasks/: rooms in layers -------------------------------------------------------------

# Inside tasks/, lowest first after "the parts" (every module not named below: models, the waits,
# the run's pieces, selectors, validation). A module imports its own layer or a lower one, never
# a higher one. The parts say what should happen (a RunResult) and never schedule it; the runner
# runs one task and returns; the queue decides when things run (enqueue, defer, the sweep) and
# takes over from dead workers; the entry points act for a user or a process. So a wait cannot
# enqueue, and neither can the runner: it returns, and tasks.queue schedules.
TASKS_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("the parts", ()),
    ("the runner", ("tasks/run/runner.py",)),
    ("the queue", ("tasks/queue.py", "tasks/recovery.py")),
    (
        "the entry points",
        (
            "tasks/apps.py",
            "tasks/services.py",
            "tasks/follow_ups.py",
            "tasks/pull_requests/follow_ups.py",
            "tasks/views.py",
            "tasks/forms.py",
            "tasks/urls.py",
            "tasks/admin.py",
            "tasks/management/",
        ),
    ),
)


def tasks_layer_of(relative: str, layers: tuple[tuple[str, tuple[str, ...]], ...]) -> int:
    """The index in ``layers`` of a module of tasks/ (a path like ``tasks/run/runner.py``)."""
    for index, (_name, paths) in enumerate(layers):
        if any(relative == p or (p.endswith("/") and relative.startswith(p)) for p in paths):
            return index
    return 0


def module_paths(root: Path) -> dict[str, str]:
    """Dotted module name -> path (relative, with /) of every project module."""
    found = {}
    for path in project_modules(root):
        relative = path.relative_to(root)
        name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        found[name] = relative.as_posix()
    return found


def _imports_of(
    root: Path, relative: str, modules: dict[str, str]
) -> Iterator[tuple[int, str, str]]:
    """(line, module name, source text) of every project module a module imports; for
    `from package import name`, the submodule when `name` is one."""
    for node in ast.walk(_tree(root / relative)):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        single = ast.Module(body=[node], type_ignores=[])
        for line, module, statement in _imported_modules(single, Path(relative)):
            names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            for target in submodules or ([module] if module in modules else []):
                yield line, target, statement


def import_graph(root: Path) -> dict[str, dict[str, tuple[int, str]]]:
    """Module -> {module it imports: (line, statement)}, for the project's own modules."""
    modules = module_paths(root)
    graph: dict[str, dict[str, tuple[int, str]]] = {}
    for name, relative in modules.items():
        edges = graph.setdefault(name, {})
        for line, target, statement in _imports_of(root, relative, modules):
            if target != name:
                edges.setdefault(target, (line, statement))
    return graph


def import_cycles(root: Path) -> list[list[str]]:
    """Every circle of modules importing each other (strongly connected components, Tarjan)."""
    graph = import_graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, {}):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while (member := stack.pop()) != module:
                component.append(member)
            if component:
                cycles.append(sorted([module, *component]))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def tasks_wrong_way_imports(
    root: Path, layers: tuple[tuple[str, tuple[str, ...]], ...] = TASKS_LAYERS
) -> list[str]:
    """Each import inside tasks/ from a lower layer into a higher one, as file:line and why."""
    modules = module_paths(root)
    found = []
    for importer, edges in import_graph(root).items():
        path = modules[importer]
        if not path.startswith("tasks/"):
            continue
        own = tasks_layer_of(path, layers)
        for target, (line, statement) in sorted(edges.items(), key=lambda e: e[1]):
            theirs = tasks_layer_of(modules[target], layers) if target.startswith("tasks.") else 0
            if theirs > own:
                found.append(
                    f"{path}:{line}: {statement} (from {layers[own][0]} up to {layers[theirs][0]})"
                )
    return found


def test_no_app_has_modules_that_import_each_other_in_a_circle() -> None:
    cycles = import_cycles(ROOT)
    assert not cycles, "Modules that import each other in a circle (lazy imports included):\n" + (
        "\n".join(" -> ".join(cycle) for cycle in cycles)
    )


def test_the_rooms_of_tasks_import_downwards_only() -> None:
    found = tasks_wrong_way_imports(ROOT)
    assert not found, (
        "Inside tasks/, lower layers import higher ones (see TASKS_LAYERS: return a RunResult "
        "and let tasks.queue schedule it):\n" + "\n".join(found)
    )


# --- A lazy import says why ---------------------------------------------------------------------


def unexplained_lazy_imports(root: Path) -> list[str]:
    """Imports inside a function with no comment saying why, on their line or just above them
    (one comment may stand above a run of imports)."""
    found = []
    for path in project_modules(root):
        relative = path.relative_to(root).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = _tree(path)
        lazy = {
            node
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Import | ast.ImportFrom)
        }
        spans = {node.end_lineno or node.lineno: node.lineno for node in lazy}
        for node in sorted(lazy, key=lambda n: n.lineno):
            above = _above_the_run(node.lineno - 1, spans, lines)
            reason = lines[above - 1].strip().startswith("#") if above >= 1 else False
            if not reason and "#" not in lines[node.lineno - 1]:
                found.append(f"{relative}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def _above_the_run(above: int, spans: dict[int, int], lines: list[str]) -> int:
    """The line just above the run of imports (blank lines within it allowed) that ends at
    `above`."""
    while True:
        if above in spans:
            above = spans[above] - 1
            continue
        blank = above
        while blank >= 1 and not lines[blank - 1].strip():
            blank -= 1
        if blank != above and blank in spans:
            above = blank
            continue
        return above


def test_every_import_inside_a_function_says_why() -> None:
    found = unexplained_lazy_imports(ROOT)
    assert not found, (
        "Imports inside a function without a comment saying why (import at the top, or say "
        "why not in one line above it):\n" + "\n".join(found)
    )


# --- The checker itself, on a small made-up project --------------------------------------------


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_checker_reports_each_wrong_way_import_with_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, "common/__init__.py", "")
    _write(tmp_path, "oauth_tokens/__init__.py", "")
    _write(
        tmp_path,
        "oauth_tokens/services/refresh.py",
        "from common.errors import InputError\n"
        "\n"
        "def f():\n"
        "    from accounts.selectors import preferences_get\n"  # line 4: lazy, still counted
        "    import tasks.runner\n",  # line 5
    )
    _write(tmp_path, "accounts/services.py", "from oauth_tokens.formats import x\n")
    _write(tmp_path, "gateway/runtime.py", "from typing import TYPE_CHECKING\nimport accounts\n")
    _write(tmp_path, "tasks/runner.py", "from gateway.runtime import TaskGateway\n")
    _write(tmp_path, "config/urls.py", "import tasks.views\n")
    _write(tmp_path, "oauth_tokens/migrations/0001_initial.py", "import accounts\n")
    _write(tmp_path, "oauth_tokens/tests/test_x.py", "import accounts\n")

    found, unknown = wrong_way_imports(tmp_path)

    assert [str(item) for item in found] == [
        "gateway/runtime.py:2: gateway imports accounts (import accounts)",
        "oauth_tokens/services/refresh.py:4: oauth_tokens imports accounts "
        "(from accounts.selectors import preferences_get)",
        "oauth_tokens/services/refresh.py:5: oauth_tokens imports tasks (import tasks.runner)",
    ]
    assert unknown == []


def test_checker_resolves_relative_imports(tmp_path: Path) -> None:
    # `from ..models import M` inside oauth_tokens/services/ stays in oauth_tokens.
    _write(tmp_path, "oauth_tokens/services/__init__.py", "from .refresh import f\n")
    _write(
        tmp_path, "oauth_tokens/services/refresh.py", "from ..models import M\nfrom . import x\n"
    )
    _write(tmp_path, "accounts/selectors.py", "from .models import P\n")

    found, unknown = wrong_way_imports(tmp_path)

    assert found == []
    assert unknown == []


def test_checker_names_an_app_it_does_not_know(tmp_path: Path) -> None:
    _write(tmp_path, "billing/invoices.py", "import tasks\n")

    _found, unknown = wrong_way_imports(tmp_path)

    assert unknown == ["billing"]


@pytest.mark.parametrize(
    ("relative", "skipped"),
    [
        ("oauth_tokens/formats.py", False),
        ("oauth_tokens/migrations/0001_initial.py", True),
        ("tests/oauth_tokens/test_formats.py", True),
        ("oauth_tokens/test_formats.py", True),
        ("tasks/conftest.py", True),
        (".venv/lib/python3.12/site-packages/django/__init__.py", True),
    ],
)
def test_project_modules_leave_out_tests_migrations_and_venvs(
    tmp_path: Path, relative: str, skipped: bool
) -> None:
    _write(tmp_path, relative, "")
    assert (project_modules(tmp_path) == []) is skipped


def test_checker_finds_modules_that_import_each_other_in_a_circle(tmp_path: Path) -> None:
    # What tasks/ looked like before tasks/queue.py: the entry points imported the runner, and
    # the waits imported the entry points inside functions to enqueue.
    _write(tmp_path, "tasks/__init__.py", "")
    _write(tmp_path, "tasks/background.py", "from .runner import task_run\n")
    _write(tmp_path, "tasks/runner.py", "from .waiting import wait_plan\n")
    _write(
        tmp_path,
        "tasks/waiting.py",
        "def wait_schedule():\n    from .background import resume\n",
    )
    _write(tmp_path, "tasks/models.py", "")
    _write(tmp_path, "notifications/services.py", "from tasks.models import CodingTask\n")

    assert import_cycles(tmp_path) == [["tasks.background", "tasks.runner", "tasks.waiting"]]


def test_checker_reports_a_lower_room_of_tasks_importing_a_higher_one(tmp_path: Path) -> None:
    _write(tmp_path, "tasks/models.py", "")
    _write(
        tmp_path,
        "tasks/waits/engine.py",
        "from tasks.models import CodingTask\n\ndef wait():\n    from tasks.queue import enqueue\n",
    )
    _write(tmp_path, "tasks/run/runner.py", "from ..queue import task_enqueue\n")
    _write(tmp_path, "tasks/queue.py", "from tasks.run.runner import task_run\n")
    _write(tmp_path, "tasks/services.py", "from tasks.queue import task_enqueue\n")
    _write(tmp_path, "tasks/management/commands/run_worker.py", "from tasks import queue\n")

    assert tasks_wrong_way_imports(tmp_path) == [
        "tasks/run/runner.py:1: from ..queue import task_enqueue (from the runner up to the queue)",
        "tasks/waits/engine.py:4: from tasks.queue import enqueue (from the parts up to the queue)",
    ]


def test_checker_wants_a_reason_beside_every_import_inside_a_function(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "common/apps.py",
        "import os\n"
        "\n"
        "def ready():\n"
        "    from . import encryption\n"  # line 4: no reason
        "\n"
        "def run():\n"
        "    # Only after the settings are chosen.\n"
        "    import django\n"
        "    from django.conf import settings\n"
        "\n"
        "    from django.db import connection\n"  # same run, one reason for all three
        "    x = 1\n"
        "    import json  # the slow path only\n"
        "    import csv\n",  # line 14: a new run, no reason
    )

    assert unexplained_lazy_imports(tmp_path) == [
        "common/apps.py:4: from . import encryption",
        "common/apps.py:14: import csv",
    ]
