"""The universal agent image's toolchains do a developer's work inside the task container as the
runner makes it: read-only root, no capabilities, no new privileges, uid 1000, no network, a
writable home and /tmp. Nothing here reaches a registry: every dependency is local."""

from __future__ import annotations

import docker
import pytest

from tests.agent_image.hardened import HardenedRun, run_hardened
from tests.fakes.docker_env import CLI_VERSION
from tests.fakes.package_registry import python_wheel

pytestmark = [pytest.mark.docker, pytest.mark.universal, pytest.mark.timeout(600)]


def _ok(run: HardenedRun) -> str:
    assert run.exit_code == 0, run.describe()
    return run.output


def test_the_container_is_the_runners_hardened_one(
    docker_client: docker.DockerClient, universal_image: str
) -> None:
    run = run_hardened(
        docker_client,
        universal_image,
        script="id -u; touch /usr/local/bin/x 2>&1; touch /home/agent/x /tmp/x && echo writable",
    )
    out = _ok(run)
    host = run.inspect["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "none"
    assert out.splitlines()[0] == "1000"
    assert "Read-only file system" in out
    assert "writable" in out


def test_python_venv_and_pip_install_a_local_wheel(
    docker_client: docker.DockerClient, universal_image: str
) -> None:
    wheel = python_wheel(
        "greeting", "1.0", {"greeting/__init__.py": "def greet():\n    return 'hello, wheel'\n"}
    )
    script = """set -e
cd ~/work
python3 -m venv .venv
.venv/bin/pip install --no-index dist/*.whl
.venv/bin/python -c 'import greeting; print("venv:", greeting.greet())'
# The system's pip installs for the user (the root is read-only; PEP 668 is lifted for that).
pip install --user --no-index dist/*.whl
python3 -c 'import greeting; print("user:", greeting.__file__)'
"""
    out = _ok(
        run_hardened(
            docker_client,
            universal_image,
            script=script,
            files={f"work/dist/{wheel.filename}": wheel.data},
        )
    )
    assert "venv: hello, wheel" in out
    assert "user: /home/agent/.local/lib/python3" in out


def test_npm_test_with_a_local_dependency_and_a_global_install(
    docker_client: docker.DockerClient, universal_image: str
) -> None:
    files = {
        "shout/package.json": '{"name": "shout", "version": "1.0.0", "main": "index.js",'
        ' "bin": {"shout": "cli.js"}}',
        "shout/index.js": "module.exports = (s) => s.toUpperCase() + '!';\n",
        "shout/cli.js": "#!/usr/bin/env node\nconsole.log(require('./')(process.argv[2]));\n",
        "work/package.json": '{"name": "app", "version": "1.0.0", "private": true,'
        ' "scripts": {"test": "node test.js"}, "dependencies": {"shout": "file:../shout"}}',
        "work/test.js": "const assert = require('assert');\n"
        "assert.strictEqual(require('shout')('hi'), 'HI!');\n"
        "console.log('app tests passed');\n",
    }
    script = """set -e
cd ~/work
npm install
npm test
# A global install goes to the home (NPM_CONFIG_PREFIX), its command is on PATH.
npm install -g ../shout
shout global
"""
    out = _ok(run_hardened(docker_client, universal_image, script=script, files=files))
    assert "app tests passed" in out
    assert "GLOBAL!" in out


def test_go_build_and_go_test_of_a_module(
    docker_client: docker.DockerClient, universal_image: str
) -> None:
    files = {
        "work/go.mod": "module example.com/hello\n\ngo 1.22\n",
        "work/greet/greet.go": "package greet\n\n"
        'func Hello(name string) string { return "hello, " + name }\n',
        "work/greet/greet_test.go": 'package greet\n\nimport "testing"\n\n'
        "func TestHello(t *testing.T) {\n"
        '\tif got := Hello("go"); got != "hello, go" {\n\t\tt.Fatalf("got %q", got)\n\t}\n}\n',
        "work/main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/hello/greet"\n)\n\n'
        'func main() { fmt.Println(greet.Hello("binary")) }\n',
    }
    script = """set -e
cd ~/work
go build -o hello .
./hello
go test ./...
# Its caches are in the home.
test -d ~/.cache/go-build && echo "cache in home"
"""
    out = _ok(run_hardened(docker_client, universal_image, script=script, files=files))
    assert "hello, binary" in out
    assert "ok  \texample.com/hello/greet" in out
    assert "cache in home" in out


def test_javac_java_and_jar(docker_client: docker.DockerClient, universal_image: str) -> None:
    files = {
        "work/src/Hello.java": "public class Hello {\n"
        "  public static void main(String[] args) {\n"
        '    System.out.println("hello from java " + Runtime.version().feature());\n'
        "  }\n}\n",
    }
    script = """set -e
cd ~/work
javac -d classes src/Hello.java
java -cp classes Hello
jar --create --file hello.jar --main-class Hello -C classes .
java -jar hello.jar
"""
    out = _ok(run_hardened(docker_client, universal_image, script=script, files=files))
    assert out.count("hello from java 21") == 2


def test_gcc_g_plus_plus_and_make(docker_client: docker.DockerClient, universal_image: str) -> None:
    files = {
        "work/Makefile": "all: hello\n\nhello: main.o twice.o\n\t$(CXX) -o $@ $^\n\n"
        "main.o: main.c\n\t$(CC) -O2 -Wall -c main.c\n\n"
        "twice.o: twice.cpp\n\t$(CXX) -O2 -Wall -c twice.cpp\n",
        "work/main.c": "#include <stdio.h>\nint twice(int);\n"
        'int main(void) { printf("twice 21 is %d\\n", twice(21)); return 0; }\n',
        "work/twice.cpp": 'extern "C" int twice(int n) { return n * 2; }\n',
    }
    out = _ok(
        run_hardened(
            docker_client, universal_image, script="set -e\ncd ~/work\nmake\n./hello\n", files=files
        )
    )
    assert "twice 21 is 42" in out


def test_ripgrep_sqlite3_and_the_everyday_tools(
    docker_client: docker.DockerClient, universal_image: str
) -> None:
    files = {
        "work/src/a.py": "x = 1\n",
        "work/src/deep/b.py": "# NEEDLE-4c1e is here\n",
        "work/.gitignore": "ignored/\n",
        "work/ignored/c.py": "# NEEDLE-4c1e ignored\n",
    }
    script = """set -e
cd ~/work
git init -q .
rg -n NEEDLE-4c1e
sqlite3 db.sqlite 'create table t (n int); insert into t values (2), (40); select sum(n) from t;'
zip -q -r src.zip src && unzip -l src.zip | grep -c '\\.py$'
echo '{"a": {"b": 7}}' | jq .a.b
claude --version
"""
    out = _ok(run_hardened(docker_client, universal_image, script=script, files=files))
    lines = out.splitlines()
    assert "src/deep/b.py:1:# NEEDLE-4c1e is here" in lines
    assert not any("ignored/c.py" in line for line in lines)  # rg honours .gitignore
    assert "42" in lines
    assert "2" in lines  # two .py files in the zip
    assert "7" in lines
    assert f"{CLI_VERSION} (Claude Code)" in lines
