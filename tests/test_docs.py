"""The project's own docs hold what the code cites: every cited section exists."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "claude-cli-contract.md"
# The sections the code cites; renaming one breaks those citations.
CONTRACT_ANCHORS = {
    "credentials-file",
    "refresh-request",
    "environment-precedence",
    "output-formats",
    "usage-limits-and-auth-failures",
    "what-the-server-trusts",
    "messages-api-through-a-base-url",
    "ripgrep",
    "session-transcripts",
    "resuming-a-session",
    "stream-json-input",
}
CITATION = re.compile(r"docs/claude-cli-contract\.md#([a-z0-9-]+)")
SKIPPED_DIRS = {".venv", ".git", "node_modules", "test-output", "__pycache__"}


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, - for spaces."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {
        github_anchor(line.lstrip("#"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


def test_github_anchor_matches_githubs_rule() -> None:
    assert github_anchor(" Messages API through a base URL") == "messages-api-through-a-base-url"
    assert github_anchor("Usage limits and auth failures") == "usage-limits-and-auth-failures"
    assert github_anchor("What's `next`?") == "whats-next"


def test_contract_has_the_agreed_sections() -> None:
    missing = CONTRACT_ANCHORS - anchors(CONTRACT)
    assert not missing, f"docs/claude-cli-contract.md lacks sections: {sorted(missing)}"


def _project_files(root: Path) -> list[Path]:
    """Every file of the checkout; skipped folders are pruned, not walked (a virtualenv holds
    tens of thousands of files)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d not in SKIPPED_DIRS]
        found += [Path(folder) / name for name in files]
    return sorted(found)


def test_every_citation_of_the_contract_resolves() -> None:
    known = anchors(CONTRACT)
    broken = []
    for path in _project_files(ROOT):
        relative = path.relative_to(ROOT)
        if path.suffix not in {".py", ".md", ".html", ".sh", ".txt", ".example"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            cited = CITATION.findall(line)
            broken += [f"{relative}:{number}: #{a}" for a in cited if a not in known]
    assert not broken, "Citations of sections that do not exist:\n" + "\n".join(broken)


# --- Commands in the docs run as written on a fresh clone ---------------------------------------
# Tools that exist only inside the project's virtualenv: a fresh machine has no Django, Celery or
# pytest on its PATH (`python manage.py` fails with "No module named 'django'").
VENV_TOOLS = {"python", "python3", "pytest", "celery", "pip", "pip3", "gunicorn", "django-admin"}
COMMAND_DOCS = [ROOT / "README.md", ROOT / "agent" / "README.md", *sorted(ROOT.glob("docs/*.md"))]
CODE_SPAN = re.compile(r"`([^`\n]+)`")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def doc_commands(text: str) -> list[str]:
    """Every command line in a Markdown text: fenced code lines and inline code spans, split at
    `;`, `&&`, `||` and pipes, comments dropped."""
    pieces: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        pieces += [line] if fenced else CODE_SPAN.findall(line)
    commands = []
    for piece in pieces:
        for part in re.split(r";|&&|\|\||\|", piece.split(" #")[0]):
            if part.strip():
                commands.append(part.strip())
    return commands


def bare_tool(command: str) -> str | None:
    """The virtualenv tool a command calls without `.venv/bin/`, if any (a lone word, like the
    engine name `celery`, is a name, not a command)."""
    words = [w for w in command.split() if not ENV_ASSIGNMENT.match(w)]
    if words and words[0] in {"sudo", "exec", "env", "time"}:
        words = words[1:]
    return words[0] if len(words) > 1 and words[0] in VENV_TOOLS else None


def test_doc_commands_finds_bare_tools_and_accepts_the_venv_ones() -> None:
    text = "Run `python manage.py migrate`; then\n```bash\nFOO=1 pytest -x  # all\n```\n"
    found = [bare_tool(c) for c in doc_commands(text)]
    assert found == ["python", "pytest"]
    good = "`.venv/bin/python manage.py migrate`, `make run`, `TASKS_ENGINE=celery`, `celery`"
    assert [bare_tool(c) for c in doc_commands(good)] == [None, None, None, None]


def test_the_docs_call_python_tools_through_the_virtualenv() -> None:
    bare = [
        f"{path.relative_to(ROOT)}: {command}"
        for path in COMMAND_DOCS
        for command in doc_commands(path.read_text(encoding="utf-8"))
        if bare_tool(command)
    ]
    assert not bare, (
        "These commands fail on a fresh machine (no Django outside .venv); write .venv/bin/... "
        "or a make target:\n" + "\n".join(bare)
    )
