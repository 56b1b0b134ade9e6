"""The shape of the code: imports between apps run one way, and modules stay small.

Allowed directions (docs/architecture.md explains them):
    common <- oauth_tokens <- accounts <- tasks;  gateway may use common and oauth_tokens;
    hosting may use common;  tasks may use gateway and hosting;  config may use anything.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a lazy import is
still a dependency, and a wrong-way one is usually a cycle being dodged.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# App -> the other apps it may import. An app missing here fails the test: say where it stands.
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "oauth_tokens": frozenset({"common"}),
    "accounts": frozenset({"common", "oauth_tokens"}),
    "gateway": frozenset({"common", "oauth_tokens"}),
    "tasks": frozenset({"common", "oauth_tokens", "accounts", "gateway", "hosting"}),
    # On top (issue 13): they listen to the lower apps' signals; nothing imports them.
    "notifications": frozenset({"common", "oauth_tokens", "accounts", "tasks"}),
    "usage": frozenset({"common", "oauth_tokens", "accounts", "gateway", "tasks"}),
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
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIPPED_DIRS.intersection(relative.parts) or _is_test_file(relative):
            continue
        found.append(path)
    return found


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
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module, statement in _imported_modules(tree, relative):
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
