"""pip, npm and the JDK in the universal image reach package registries through the proxy
variables the entrypoint sets (HTTPS_PROXY and friends), like a task's gateway will carry them.

The registries (a PyPI simple index and an npm registry, over TLS) and the proxy are served by
this test on 127.0.0.1; the container runs on the host network for that alone (its names
resolve nowhere, so only the proxy gets a client there), with the rest of the hardening."""

from __future__ import annotations

import docker
import pytest

from tests.agent_image.hardened import run_hardened
from tests.fakes.package_registry import (
    NPM_HOST,
    PYPI_HOST,
    PackageRegistry,
    TunnelProxy,
    npm_tarball,
    python_wheel,
)

pytestmark = [pytest.mark.docker, pytest.mark.universal, pytest.mark.timeout(600)]

CA = "/home/agent/registry-ca.pem"
FETCH_JAVA = """import java.net.URI;

public class Fetch {
  public static void main(String[] args) throws Exception {
    var connection = URI.create(args[0]).toURL().openConnection();
    try (var in = connection.getInputStream()) {
      System.out.println("java fetched: " + new String(in.readAllBytes()).trim());
    }
  }
}
"""
SCRIPT = f"""set -e
cd ~/work
python3 -m venv .venv
.venv/bin/pip install greeting
.venv/bin/python -c 'import greeting; print(greeting.greet())'
npm install
npm test
# The JDK ignores HTTPS_PROXY: the image hands it over as system properties.
keytool -importcert -noprompt -alias registry -file {CA} -keystore ~/trust.p12 \\
    -storetype PKCS12 -storepass changeit >/dev/null
java -Djavax.net.ssl.trustStore=$HOME/trust.p12 -Djavax.net.ssl.trustStorePassword=changeit \\
    Fetch.java https://{PYPI_HOST}/simple/greeting/
# A registry the proxy does not allow stays out of reach, and pip says why.
if .venv/bin/pip download --retries 1 --timeout 5 --no-deps -d /tmp/refused \\
    --index-url https://pypi.org/simple/ requests; then
  exit 9
fi
"""


def test_pip_npm_and_java_install_through_the_proxy_variables(
    docker_client: docker.DockerClient, universal_image: str
) -> None:
    wheel = python_wheel(
        "greeting", "1.0", {"greeting/__init__.py": "def greet():\n    return 'hi from pypi'\n"}
    )
    tarball = npm_tarball(
        "shout", "1.2.0", {"index.js": "module.exports = (s) => s.toUpperCase() + '!';\n"}
    )
    files: dict[str, str | bytes] = {
        "work/package.json": '{"name": "app", "version": "1.0.0", "private": true,'
        ' "scripts": {"test": "node test.js"}, "dependencies": {"shout": "^1.0.0"}}',
        "work/test.js": "console.log('npm test:', require('shout')('from npm'));\n",
        "work/Fetch.java": FETCH_JAVA,
    }
    with PackageRegistry([wheel, tarball]) as registry, TunnelProxy(registry.routes()) as proxy:
        files["registry-ca.pem"] = registry.ca_file.read_bytes()
        env = {
            # What the entrypoint exports when the gateway relay is up.
            **{name: proxy.url for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy")},
            "http_proxy": proxy.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # Which registries, and the test CA to trust for them.
            "PIP_INDEX_URL": registry.pip_index_url,
            "PIP_CERT": CA,
            "NPM_CONFIG_REGISTRY": registry.npm_url,
            "NPM_CONFIG_CAFILE": CA,
        }
        run = run_hardened(
            docker_client,
            universal_image,
            script=SCRIPT,
            files=files,
            env=env,
            network_mode="host",
        )
        tunnels = proxy.requests
        fetched = [(r.host, r.path, r.status) for r in registry.requests]
    assert run.exit_code == 0, run.describe()
    assert run.inspect["HostConfig"]["ReadonlyRootfs"] is True
    assert "hi from pypi" in run.output
    assert "npm test: FROM NPM!" in run.output
    assert "java fetched: <!DOCTYPE html>" in run.output
    # Every client went through the proxy (the names resolve nowhere else).
    allowed = {(r.target, r.status) for r in tunnels if r.status == 200}
    assert (f"{PYPI_HOST}:443", 200) in allowed
    assert (f"{NPM_HOST}:443", 200) in allowed
    assert (PYPI_HOST, "/simple/greeting/", 200) in fetched
    assert (PYPI_HOST, f"/files/{wheel.filename}", 200) in fetched
    assert (NPM_HOST, "/shout", 200) in fetched
    assert (NPM_HOST, f"/shout/-/{tarball.filename}", 200) in fetched
    # The JVM got the proxy from the image's shell setup, not from the test.
    assert "Picked up JDK_JAVA_OPTIONS: -Dhttp.proxyHost=127.0.0.1" in run.output
    # The host the proxy refused: pip tried it there and reported the refusal.
    assert ("pypi.org:443", 403) in {(r.target, r.status) for r in tunnels}
    assert "Tunnel connection failed: 403" in run.output
