"""`make test` without Chromium: scripts/test.sh installs it as root, else says how in one line."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

from .helpers import ROOT

pytestmark = pytest.mark.deploy

TEST_SH = ROOT / "scripts" / "test.sh"


def fake_tools(bin_dir: Path, *, uid: int, chromium: Path) -> Path:
    """`id` and `apt-get` stand-ins on PATH: apt-get records its arguments and "installs"."""
    bin_dir.mkdir()
    log = bin_dir / "apt.log"
    tools = {
        "id": f'#!/bin/sh\n[ "$1" = -u ] && echo {uid} || /usr/bin/id "$@"\n',
        "apt-get": (
            f'#!/bin/sh\necho "$@" >> {log}\n'
            f'case "$*" in *install*chromium*) printf "#!/bin/sh\\n" > {chromium}; '
            f"chmod +x {chromium};; esac\n"
        ),
    }
    for name, text in tools.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return log


def chromium_ensure(tmp_path: Path, uid: int) -> tuple[subprocess.CompletedProcess, Path, Path]:
    chromium = tmp_path / "chromium"
    log = fake_tools(tmp_path / "bin", uid=uid, chromium=chromium)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    env["CHROMIUM"] = str(chromium)
    result = subprocess.run(
        ["bash", "-c", f"source {TEST_SH}; chromium_ensure"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, chromium, log


def test_otherwise_one_line_says_how(tmp_path):
    result, chromium, log = chromium_ensure(tmp_path, uid=1000)
    assert result.returncode == 0
    assert not chromium.exists()
    assert not log.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "apt-get install -y --no-install-recommends chromium" in lines[0]


def test_a_present_chromium_is_left_alone(tmp_path):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    result, _, log = chromium_ensure(tmp_path, uid=0)
    assert result.returncode == 0
    assert result.stderr == ""
    assert not log.exists()
