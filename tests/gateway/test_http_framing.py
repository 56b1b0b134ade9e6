"""The gateway's request framing (gateway/http1.py): property tests of the head parser, then the
same shapes sent to a real gateway socket."""

from __future__ import annotations

import asyncio
import logging
import socket
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http1 import MAX_HEAD_BYTES, GatewayLimits, HttpConnection, HttpError, log_safe
from tests.fakes.anthropic_api import FakeAnthropicAPI

pytestmark = pytest.mark.timeout(120)

REFUSALS = {400, 413, 431, 501, 505}
TCHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=16)
# Visible ASCII with inner spaces: what a well-formed header value holds.
values = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], min_size=1, max_size=30)
controls = st.sampled_from([chr(c) for c in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]])
# Names the test sets itself (Host) or that frame the body: a second one is rightly refused.
NOT_FRAMING = tokens.filter(
    lambda n: n.lower() not in {"content-length", "transfer-encoding", "host"}
)


def parse(data: bytes) -> tuple[object, bytes] | HttpError:
    """(request, body) for these bytes as the gateway reads them, or its refusal."""

    async def run() -> tuple[object, bytes] | HttpError:
        reader = asyncio.StreamReader(limit=MAX_HEAD_BYTES)
        reader.feed_data(data)
        reader.feed_eof()
        conn = HttpConnection(reader, None, GatewayLimits(read_timeout=5, idle_timeout=5))  # type: ignore[arg-type]
        try:
            request = await conn.request_next()
            body = b""
            while request is not None and (piece := await conn.body_piece()):
                body += piece
        except HttpError as exc:
            return exc
        return request, body

    return asyncio.run(run())


def head(*lines: str) -> bytes:
    return (
        "\r\n".join(["POST /v1/messages HTTP/1.1", "Host: gateway", *lines]) + "\r\n\r\n"
    ).encode("utf-8")


def refused(result: object, *statuses: int) -> bool:
    return isinstance(result, HttpError) and result.status in (statuses or {400})


@given(st.lists(st.tuples(NOT_FRAMING, values), max_size=8), st.binary(max_size=300))
def test_a_well_formed_request_parses_to_what_was_sent(
    headers: list[tuple[str, str]], body: bytes
) -> None:
    lines = [f"{name}: {value}" for name, value in headers] + [f"Content-Length: {len(body)}"]
    result = parse(head(*lines) + body)
    assert not isinstance(result, HttpError), result
    request, got = result
    assert request.headers[1:-1] == [(n.lower(), v) for n, v in headers]  # type: ignore[attr-defined]
    assert got == body


def parse_all(data: bytes) -> list[tuple[str, bytes]]:
    """(target, body) of each request on one connection that sent ``data`` at once."""

    async def run() -> list[tuple[str, bytes]]:
        reader = asyncio.StreamReader(limit=MAX_HEAD_BYTES)
        reader.feed_data(data)
        reader.feed_eof()
        conn = HttpConnection(reader, None, GatewayLimits(read_timeout=5, idle_timeout=5))  # type: ignore[arg-type]
        found = []
        while (request := await conn.request_next()) is not None:
            body = b""
            while piece := await conn.body_piece():
                body += piece
            found.append((request.target, body))
        return found

    return asyncio.run(run())


@given(st.lists(st.tuples(st.binary(max_size=200), st.sampled_from(["length", "chunked", "none"]))))
def test_pipelined_requests_each_get_their_own_body(sent: list[tuple[bytes, str]]) -> None:
    data = b""
    expected = []
    for number, (body, framing) in enumerate(sent):
        if framing == "length":
            data += head(f"Content-Length: {len(body)}").replace(b"/v1/messages", b"/%d" % number)
            data += body
        elif framing == "chunked":
            data += head("Transfer-Encoding: chunked").replace(b"/v1/messages", b"/%d" % number)
            data += (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        else:
            data += head().replace(b"/v1/messages", b"/%d" % number)
            body = b""
        expected.append((f"/{number}", body))
    assert parse_all(data) == expected


@given(st.binary(max_size=400))
def test_any_bytes_after_a_request_line_give_a_request_or_a_refusal(junk: bytes) -> None:
    for data in (junk, b"GET / HTTP/1.1\r\nHost: a\r\n" + junk + b"\r\n\r\n"):
        result = parse(data)
        if isinstance(result, HttpError):
            assert result.status in REFUSALS, result
            continue
        request, _ = result
        for _, value in getattr(request, "headers", []):
            assert not any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in value), value


@given(values, st.integers(min_value=0, max_value=30), controls)
def test_a_control_character_in_a_header_value_is_refused(
    value: str, where: int, control: str
) -> None:
    """Bare LF, bare CR, NUL, ESC and the rest: never one header, never two."""
    where = min(where, len(value))
    poisoned = value[:where] + control + value[where:]
    assert refused(parse(head(f"X-A: {poisoned}", "Content-Length: 0")))


def test_the_bare_lf_injection_and_nul_get_specific_messages() -> None:
    messages = [
        getattr(parse(head(line, "Content-Length: 0")), "message", None)
        for line in ("X-A: b\nInjected: yes", "X-A: b\x00c", "X-A: b\rInjected: yes")
    ]
    assert messages == [
        "bare LF in the request head",
        "NUL in the request head",
        "bare CR in the request head",
    ]


@given(st.sampled_from([" ", "\t", "  ", " \t"]), values)
def test_folded_header_lines_are_refused(indent: str, value: str) -> None:
    assert refused(parse(head("X-A: b", f"{indent}{value}", "Content-Length: 0")))


@given(
    st.sampled_from(["Content-Length", "content-length", "CONTENT-LENGTH"]),
    st.sampled_from(["Transfer-Encoding", "transfer-encoding", "TRANSFER-ENCODING"]),
    st.sampled_from(["chunked", "Chunked", " chunked", "chunked "]),
    st.booleans(),
)
def test_content_length_with_transfer_encoding_is_refused(
    cl_name: str, te_name: str, te_value: str, te_first: bool
) -> None:
    pair = [f"{cl_name}: 5", f"{te_name}: {te_value}"]
    lines = pair[::-1] if te_first else pair
    assert refused(parse(head(*lines) + b"0\r\n\r\n"))


@given(st.integers(0, 99), st.integers(0, 99), st.booleans())
def test_two_different_content_lengths_are_refused(a: int, b: int, one_header: bool) -> None:
    if a == b:
        return
    lines = (
        [f"Content-Length: {a}, {b}"]
        if one_header
        else [f"Content-Length: {a}"] * 1 + [f"Content-Length: {b}"]
    )
    assert refused(parse(head(*lines) + b"x" * max(a, b)))


@pytest.mark.parametrize(
    "lines",
    [
        ["Transfer-Encoding: chunked, chunked"],
        ["Transfer-Encoding: gzip, chunked"],
        ["Transfer-Encoding: chunked, identity"],
        ["Transfer-Encoding: identity"],
        ["Transfer-Encoding: xchunked"],
        ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
        ["Transfer-Encoding: chunked\x0b"],
        ["Transfer-Encoding : chunked"],
        ["Transfer-Encoding\t: chunked"],
    ],
)
def test_transfer_encoding_variants_are_refused(lines: list[str]) -> None:
    assert refused(parse(head(*lines) + b"0\r\n\r\n"), 400, 501)


@given(
    st.text(st.characters(categories=["Nd", "No"]).filter(lambda c: not c.isascii()), min_size=1)
)
def test_content_length_in_unicode_digits_is_refused(digits: str) -> None:
    """``str.isdigit`` takes "²" and "٣"; a length is ASCII digits only."""
    assert refused(parse(head(f"Content-Length: {digits}") + b"xx"))


@given(
    st.text(st.characters(categories=["Nd", "No"]).filter(lambda c: not c.isascii()), min_size=1)
)
def test_a_connect_port_in_unicode_digits_is_refused(digits: str) -> None:
    data = f"CONNECT github.com:{digits} HTTP/1.1\r\nHost: github.com\r\n\r\n".encode()
    assert refused(parse(data))


@given(st.integers(min_value=MAX_HEAD_BYTES // 100, max_value=MAX_HEAD_BYTES // 40))
def test_a_head_over_the_limit_gets_431(count: int) -> None:
    lines = [f"X-{n}: {'v' * 90}" for n in range(count)]
    result = parse(head(*lines, "Content-Length: 0"))
    if len(head(*lines)) > MAX_HEAD_BYTES:
        assert refused(result, 431)
    else:
        assert not isinstance(result, HttpError)


@pytest.mark.parametrize(
    "data",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    ],
)
def test_cut_off_or_misframed_requests_are_refused(data: bytes) -> None:
    assert refused(parse(data))


def test_empty_lines_before_a_request_are_tolerated() -> None:
    result = parse(b"\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not isinstance(result, HttpError)
    assert result[0].target == "/x"  # type: ignore[attr-defined]


@given(st.text(max_size=300), st.integers(min_value=1, max_value=400))
def test_log_safe_text_is_one_printable_line_and_stays_so(text: str, limit: int) -> None:
    safe = log_safe(text, limit)
    assert safe.isprintable()
    assert len(safe) <= (limit + 3) * 10  # each character at most one \\Uxxxxxxxx escape
    assert log_safe(safe, 10**6) == safe


def test_log_safe_shows_escapes_instead_of_acting_on_them() -> None:
    forged = "x\n2026-01-01 CRITICAL django.security forged\x1b[2K\u2028"
    assert log_safe(forged) == ("x\\x0a2026-01-01 CRITICAL django.security forged\\x1b[2K\\u2028")


# --- the same through a real gateway socket ----------------------------------------------------


def send_raw(path: object, data: bytes) -> tuple[bytes, bool]:
    """The gateway's whole answer to these bytes, and whether it then closed the connection."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(str(path))
    sock.sendall(data)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
        closed = True
    except TimeoutError:
        closed = False
    sock.close()
    return answer, closed


@pytest.mark.parametrize(
    "data",
    [
        b"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: a\r\nX-A: b\nInjected: yes\r\n\r\n",
        b"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
        b"POST http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: a\r\nContent-Length: \xc2\xb2\r\n\r\nab",
        b"POST /v1/messages HTTP/1.1\r\nHost: a\r\nContent-Length: \xc2\xb2\r\n\r\nab",
        b"CONNECT 127.0.0.1:\xc2\xb9 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n folded\r\n\r\n",
        b"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n",
    ],
)
def test_malformed_heads_get_400_a_closed_connection_and_no_traceback(
    start_gateway, fake_api: FakeAnthropicAPI, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    with FakeAnthropicAPI() as other, caplog.at_level(logging.INFO, logger="gateway"):
        gateway, _, _ = start_gateway(test_loopback=(("127.0.0.1", other.port),))
        answer, closed = send_raw(gateway.socket_path, data.replace(b"{port}", b"%d" % other.port))
        gateway.stop()
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert closed
        assert other.requests == []
    assert fake_api.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_a_hostile_target_cannot_forge_a_log_line(
    start_gateway, caplog: pytest.LogCaptureFixture
) -> None:
    forged = b"\n2026-01-01 00:00:00 CRITICAL django.security forged\x1b[2K"
    gateway, _, lines = start_gateway()
    with caplog.at_level(logging.INFO, logger="gateway"):
        for data in (
            b"GET https://x" + forged + b" HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET https://x\x1b[2K HTTP/1.1\r\nHost: a\r\n\r\n",
            b"CONNECT x" + forged + b":443 HTTP/1.1\r\nHost: a\r\n\r\n",
        ):
            answer, _ = send_raw(gateway.socket_path, data)
            assert answer.startswith(b"HTTP/1.1 400 "), answer
        gateway.stop()
    logged = lines + [record.getMessage() for record in caplog.records]
    assert logged
    for line in logged:
        assert line.isprintable(), line
        assert "\x1b" not in line


def test_a_second_host_header_in_any_case_is_refused() -> None:
    # Two Hosts could name two destinations to two readers of the same request.
    assert refused(parse(head("HOST: elsewhere", "Content-Length: 0")))
