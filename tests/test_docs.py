"""The project's own docs hold what the code cites: every cited section exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "claude-cli-contract.md"
# The sections other branches cite (CONTRACTS between branches); renaming one breaks citations.
CONTRACT_ANCHORS = {
    "credentials-file",
    "refresh-request",
    "environment-precedence",
    "output-formats",
    "usage-limits-and-auth-failures",
    "messages-api-through-a-base-url",
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


def test_every_citation_of_the_contract_resolves() -> None:
    known = anchors(CONTRACT)
    broken = []
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if SKIPPED_DIRS.intersection(relative.parts) or not path.is_file():
            continue
        if path.suffix not in {".py", ".md", ".html", ".sh", ".txt", ".example"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            cited = CITATION.findall(line)
            broken += [f"{relative}:{number}: #{a}" for a in cited if a not in known]
    assert not broken, "Citations of sections that do not exist:\n" + "\n".join(broken)
