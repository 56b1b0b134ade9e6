"""What a task's bundle brings is checked before any of it is pushed: its size before it is
read, its objects' number and sizes before they are unpacked, git's object check (fsck) on
every object it brings (git 2.39 does not run it on a bundle fetch, whatever fetch.fsckObjects
says), and a time limit. Against the loopback git server."""

import subprocess

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hosting.bundle import BundleLimits, bundle_read
from hosting.errors import HostingError, Refusal
from hosting.git import branch_push_from_bundle, repository_clone
from tests.hosting.conftest import REPO, agent_commit
from tests.hosting.packs import bundle_with_blob, zeros_deflated

BRANCH = "claude-runner/1-change"
GIB = 1 << 30


@pytest.fixture
def cloned(hosting_settings, private_repo, token, tmp_path):
    return repository_clone(url=private_repo, branch="", token=token, dest=tmp_path / "clone")


def push(cloned, bundle, private_repo, token):
    with pytest.raises(HostingError) as caught:
        branch_push_from_bundle(
            repo=cloned, bundle=bundle, url=private_repo, token=token, branch=BRANCH
        )
    return caught.value


def pushes_received(git_server) -> int:
    return sum(r.service == "receive-pack" for r in git_server.requests)


def test_a_gitmodules_whose_url_is_an_option_is_refused_and_nothing_is_pushed(
    cloned, private_repo, token, git_server, tmp_path
):
    gitmodules = '[submodule "x"]\n\tpath = x\n\turl = --upload-pack=touch /tmp/pwned\n'
    bundle = agent_commit(
        cloned.path, tmp_path / "w", message="add x", files={".gitmodules": gitmodules}
    )
    refused = push(cloned, bundle, private_repo, token)
    assert refused.kind == Refusal.GIT_FAILED
    assert "git's object check refused them" in refused.message
    assert "disallowed submodule url" in refused.message
    assert git_server.branch_head(REPO, BRANCH) is None
    assert pushes_received(git_server) == 0


def test_a_bundle_over_the_size_cap_is_refused_before_it_is_read(
    cloned, private_repo, token, git_server, tmp_path, hosting_settings
):
    hosting_settings.AGENT_BUNDLE_MAX_BYTES = 1 << 20
    bundle = tmp_path / "huge.bundle"
    with bundle.open("wb") as sparse:
        sparse.truncate(8 * GIB)  # takes no disk; reading it would take the worker's memory
    refused = push(cloned, bundle, private_repo, token)
    assert "the bundle is 8,589,934,592 bytes; at most 1,048,576 are read" in refused.message
    assert pushes_received(git_server) == 0


def test_four_gib_of_zeros_in_four_mb_is_refused_by_its_header(
    cloned, private_repo, token, git_server, tmp_path
):
    bundle = tmp_path / "zeros.bundle"
    bundle.write_bytes(
        bundle_with_blob(base=cloned.head, stream=zeros_deflated(4 * GIB), declared=4 * GIB)
    )
    assert bundle.stat().st_size < 5_000_000
    refused = push(cloned, bundle, private_repo, token)
    assert "an object (a file, most likely) of 4,294,967,296 bytes" in refused.message
    assert "files over 104,857,600 bytes are not pushed" in refused.message
    assert pushes_received(git_server) == 0


def test_an_object_that_inflates_past_its_header_is_refused_after_that_many_bytes(
    cloned, private_repo, token, tmp_path
):
    bundle = tmp_path / "liar.bundle"
    bundle.write_bytes(
        bundle_with_blob(base=cloned.head, stream=zeros_deflated(4 * GIB), declared=1024)
    )
    refused = push(cloned, bundle, private_repo, token)
    assert "an object inflates to more than its header says" in refused.message


def test_too_many_objects_or_bytes_are_refused(
    cloned, private_repo, token, tmp_path, hosting_settings
):
    files = {f"f{n}.txt": f"{n}\n" * 1000 for n in range(3)}
    bundle = agent_commit(cloned.path, tmp_path / "w", message="three files", files=files)
    hosting_settings.HOSTING_BUNDLE_MAX_OBJECTS = 4  # a commit, a tree and three blobs: 5
    assert (
        "it holds 5 objects; at most 4 are pushed"
        in push(cloned, bundle, private_repo, token).message
    )
    hosting_settings.HOSTING_BUNDLE_MAX_OBJECTS = 100
    hosting_settings.HOSTING_BUNDLE_MAX_TOTAL_BYTES = 5_000  # three files of 2,000 bytes, and more
    assert (
        "more than 5,000 bytes once unpacked" in push(cloned, bundle, private_repo, token).message
    )


def test_unpacking_is_stopped_at_its_time_limit(
    cloned, private_repo, token, git_server, tmp_path, hosting_settings
):
    bundle = agent_commit(cloned.path, tmp_path / "w", message="m", files={"a.txt": "a\n"})
    hosting_settings.HOSTING_BUNDLE_TIMEOUT_SECONDS = 0.001
    refused = push(cloned, bundle, private_repo, token)
    assert "took longer than 0.001 seconds and was stopped" in refused.message
    assert pushes_received(git_server) == 0


def test_a_file_that_is_no_bundle_is_refused(cloned, private_repo, token, tmp_path):
    bundle = tmp_path / "junk.bundle"
    bundle.write_bytes(b"PK\x03\x04 this is a zip file, not a bundle")
    assert "the file is not a git bundle" in push(cloned, bundle, private_repo, token).message


def test_a_clean_bundle_still_goes_through(cloned, private_repo, token, git_server, tmp_path):
    bundle = agent_commit(cloned.path, tmp_path / "w", message="ok", files={"ok.txt": "ok\n"})
    pushed = branch_push_from_bundle(
        repo=cloned, bundle=bundle, url=private_repo, token=token, branch=BRANCH
    )
    assert git_server.branch_head(REPO, BRANCH) == pushed.head
    head = subprocess.run(
        ["git", "-C", str(cloned.path), "rev-parse", "refs/claude-runner/result"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert head.stdout.strip() == pushed.head


# --- the reader, by property --------------------------------------------------------------------

LIMITS = BundleLimits(
    max_bytes=1 << 20, max_objects=50, max_object_bytes=1 << 16, max_total_bytes=1 << 18
)


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory) -> bytes:
    work = tmp_path_factory.mktemp("bundle")
    git = ["git", "-C", str(work), "-c", "user.name=A", "-c", "user.email=a@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "base"], check=True)
    (work / "a.txt").write_text("hello\n" * 200)
    (work / "b.txt").write_text("hello\n" * 199 + "bye\n")  # a delta against a.txt
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "two files"], check=True)
    out = work / "x.bundle"
    subprocess.run([*git, "bundle", "create", "-q", str(out), "HEAD~1..HEAD"], check=True)
    return out.read_bytes()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=3),
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=5000), st.integers(0, 255)), max_size=4
    ),
    tail=st.binary(max_size=64),
)
@example(cuts=[], flips=[], tail=b"")
def test_any_damaged_bundle_is_read_or_refused_with_a_reason(
    real_bundle, tmp_path, cuts, flips, tail
):
    data = bytearray(real_bundle)
    for at, value in flips:
        if at < len(data):
            data[at] = value
    for at in cuts:
        del data[at : at + 7]
    path = tmp_path / "damaged.bundle"
    path.write_bytes(bytes(data) + tail)
    try:
        contents = bundle_read(path=path, limits=LIMITS)
    except HostingError as exc:
        assert exc.kind == Refusal.GIT_FAILED
        assert exc.message.startswith("The agent's commits could not be used: ")
    else:
        assert contents.objects <= LIMITS.max_objects
        assert contents.inflated_bytes <= LIMITS.max_total_bytes
