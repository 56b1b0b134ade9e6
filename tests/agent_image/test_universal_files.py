"""The universal image's files, without Docker: its two recipes agree, and its shell setup hands
the proxy to the JVM."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parents[2] / "agent"
BASH_ENV = AGENT / "universal-bash-env.sh"


def _instructions(dockerfile: Path, keyword: str) -> list[str]:
    """Each KEYWORD instruction, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    return [
        " ".join(line.split()[1:])
        for line in text.splitlines()
        if line.split()[:1] == [keyword] and not line.startswith("#")
    ]


@pytest.mark.parametrize("keyword", ["ENV", "USER", "WORKDIR", "ENTRYPOINT", "LABEL"])
def test_the_registry_and_the_offline_recipes_make_the_same_image(keyword: str) -> None:
    registry = _instructions(AGENT / "Dockerfile.universal", keyword)
    offline = _instructions(AGENT / "Dockerfile.universal-offline", keyword)
    assert registry, f"no {keyword} in Dockerfile.universal"
    assert registry == offline


def test_every_toolchain_cache_is_in_the_home() -> None:
    (env,) = _instructions(AGENT / "Dockerfile.universal", "ENV")
    settings = dict(item.split("=", 1) for item in env.split())
    for name in ("NPM_CONFIG_PREFIX", "NPM_CONFIG_CACHE", "GOPATH", "GOMODCACHE", "GOCACHE"):
        assert settings[name].startswith("/home/agent/"), name
    # The system's programs come first: nothing the agent installs shadows git or the shell.
    path = settings["PATH"].split(":")
    assert path.index("/usr/bin") < path.index("/home/agent/.local/bin")
    assert settings["USE_BUILTIN_RIPGREP"] == "0"


def _jvm_options(env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["/bin/bash", "-c", 'printf %s "${JDK_JAVA_OPTIONS-unset}"'],
        env={"PATH": "/usr/bin:/bin", "BASH_ENV": str(BASH_ENV), **env},
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert proc.stderr == ""
    return proc.stdout


def test_the_jvm_gets_the_gateway_relay_as_its_proxy() -> None:
    relay = "http://127.0.0.1:8080"
    env = {"HTTPS_PROXY": relay, "HTTP_PROXY": relay, "NO_PROXY": "127.0.0.1,localhost"}
    assert _jvm_options(env) == (
        "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=8080 "
        "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=8080 "
        "-Dhttp.nonProxyHosts=127.0.0.1|localhost"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "unset"),  # no proxy: nothing set
        (
            {"https_proxy": "http://user:secret@proxy.example:3128/"},
            "-Dhttps.proxyHost=proxy.example -Dhttps.proxyPort=3128",
        ),
        ({"http_proxy": "http://[::1]:3128"}, "-Dhttp.proxyHost=::1 -Dhttp.proxyPort=3128"),
        (
            {"HTTP_PROXY": "http://proxy.example"},
            "-Dhttp.proxyHost=proxy.example -Dhttp.proxyPort=80",
        ),
        # "*" stays a word (no file names), ".example.com" is Java's "*.example.com".
        (
            {"HTTPS_PROXY": "http://p:1", "no_proxy": "*, .example.com"},
            "-Dhttps.proxyHost=p -Dhttps.proxyPort=1 -Dhttp.nonProxyHosts=*|*.example.com",
        ),
        # The user's own options stay, after ours; a proxy they chose is left alone.
        (
            {"HTTPS_PROXY": "http://p:1", "JDK_JAVA_OPTIONS": "-Xmx1g"},
            "-Dhttps.proxyHost=p -Dhttps.proxyPort=1 -Xmx1g",
        ),
        (
            {"HTTPS_PROXY": "http://p:1", "JDK_JAVA_OPTIONS": "-Dhttps.proxyHost=mine"},
            "-Dhttps.proxyHost=mine",
        ),
    ],
)
def test_proxy_settings_become_jvm_options(env: dict[str, str], expected: str) -> None:
    assert _jvm_options(env) == expected


def test_the_shell_setup_leaves_no_functions_or_options_behind() -> None:
    proc = subprocess.run(
        ["/bin/bash", "-c", "declare -F; echo $-"],
        env={"BASH_ENV": str(BASH_ENV), "HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "hBc"  # no functions; file name expansion still on
