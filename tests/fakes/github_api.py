"""A fake GitHub REST API on 127.0.0.1: the few endpoints the runner uses, and GitHub's refusals.

    with FakeGitHubAPI() as api:
        api.token_add(token, login="octo", expires="2027-01-31 00:00:00 UTC")
        api.repository_add("acme/app", private=True)
        api.grant(token, "acme/app", push=True)
        settings.GITHUB_API_URL = api.url

Endpoints: GET /user (the token's user: login and numeric id, which a rename keeps; with the
github-authentication-token-expiration header when the token has an expiry; X-OAuth-Scopes for
classic tokens), GET /repos/{o}/{r} (permissions of the token's user), GET and POST
/repos/{o}/{r}/pulls (open pull requests; a second one for the same head is 422 "A pull request
already exists"), and GET /{o}/{r}/pull/{n}, the page a person opens (plain HTML); POST
/repos/{o}/{r}/issues/{n}/comments (recorded in ``comments``, and readable like any comment);
GET /repos/{o}/{r}/issues/comments/{id} and /pulls/comments/{id} (the comments ``comment_add``
wrote, issue and review comments numbered apart) and POST .../reactions on either (recorded in
``reactions``; 404 for a comment GitHub does not have), GET /repos/{o}/{r}/pulls/{n}, GET
/repos/{o}/{r}/issues/{n} (the issues ``issue_add`` wrote, and pull requests as issues);
``webhook_delivery`` signs a delivery as GitHub would. Refusals as
GitHub sends them: 401 Bad credentials, 404 Not Found for a
repository the token cannot see, 403 "Resource not accessible by personal access token" for a
token without write, and scripted ones (``fail_next``, ``rate_limit_next``). ``stall_next``
holds the next matching request before GitHub answers it (a slow GitHub).
``head_exists``: when set, a pull request whose head branch does not exist is refused (422).
Every request is recorded (method, path, query, body, whether a token came), never the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    token_given: bool
    status: int = 0


@dataclass
class _Token:
    login: str
    name: str
    expires: str | None
    scopes: str | None  # classic tokens: "repo, workflow"; fine-grained: None
    id: int  # the user's numeric id


@dataclass
class _Repo:
    private: bool
    default_branch: str
    grants: dict[str, bool] = field(default_factory=dict)  # token -> may push


@dataclass
class _Fault:
    method: str
    path_suffix: str
    status: int
    body: Any
    headers: dict[str, str]


REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeGitHubAPI
    protocol_version = "HTTP/1.0"
    extra_headers: dict[str, str] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        # A client that gave up on a stalled answer (what stall_next is for) is no error here.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def do_GET(self) -> None:
        self.owner._handle(self)

    do_POST = do_PATCH = do_GET


class FakeGitHubAPI(LoopbackServer[ApiRequest]):
    handler = _Handler
    name = "fake-github-api"

    def __init__(self) -> None:
        super().__init__()
        self._state = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._repos: dict[str, _Repo] = {}
        self.pulls: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []  # posted on issues and pull requests
        # Every comment GitHub has, by kind ("issues" or "pulls") and id.
        self._threads: dict[tuple[str, int], dict[str, Any]] = {}
        self._issues: dict[tuple[str, int], str] = {}  # (repository, number) -> title
        self._user_ids: dict[str, int] = {}  # login -> numeric id
        self.reactions: list[dict[str, Any]] = []  # added to comments
        self._faults: deque[_Fault] = deque()
        self._stalls: dict[str, float] = {}  # path suffix -> seconds, once
        self._deliveries = 0
        self.head_exists: Callable[[str, str], bool] | None = None

    # --- seeding -----------------------------------------------------------------------------

    def token_add(
        self,
        token: str,
        *,
        login: str = "octo",
        name: str = "Octo Cat",
        expires: str | None = None,
        scopes: str | None = None,
        user_id: int | None = None,
    ) -> None:
        """A token of GitHub user ``login``; re-adding a token under a new login is a rename
        (the numeric id stays), unless ``user_id`` says whose it is now."""
        with self._state:
            known = self._tokens.get(token)
            if user_id is None:
                user_id = known.id if known else self._user_ids.get(login.lower())
            if user_id is None:
                user_id = 1000 + len(set(self._user_ids.values())) + 1
            if known and known.id == user_id and known.login.lower() != login.lower():
                # A renamed user's old login is free for anyone to claim.
                self._user_ids.pop(known.login.lower(), None)
            self._user_ids[login.lower()] = user_id
            self._tokens[token] = _Token(login, name, expires, scopes, user_id)

    def user_id(self, login: str) -> int:
        """The numeric id of a GitHub user (a new one for a login not seen yet)."""
        with self._state:
            if login.lower() not in self._user_ids:
                self._user_ids[login.lower()] = 1000 + len(set(self._user_ids.values())) + 1
            return self._user_ids[login.lower()]

    def comment_add(
        self,
        full_name: str,
        number: int,
        body: str,
        *,
        login: str = "octo",
        user_id: int | None = None,
        review: bool = False,
        comment_id: int | None = None,
    ) -> dict[str, Any]:
        """A comment someone wrote on GitHub in issue or pull request ``number`` (``review``: a
        pull request review comment), as GitHub's API shows it."""
        author = {"login": login, "id": user_id if user_id is not None else self.user_id(login)}
        kind = "pulls" if review else "issues"
        with self._state:
            if comment_id is None:
                comment_id = 7000 + len(self._threads)
            thread_url = f"{self.url}/repos/{full_name}/{kind}/{number}"
            comment = {
                "id": comment_id,
                "body": body,
                "user": author,
                "pull_request_url" if review else "issue_url": thread_url,
                "html_url": f"{self.url}/{full_name}/{kind[:-1]}/{number}#comment-{comment_id}",
                "repo": full_name,
            }
            self._threads[(kind, comment_id)] = comment
        return comment

    def issue_add(self, full_name: str, number: int, title: str) -> None:
        """An issue on GitHub (pull requests, in ``pulls``, are issues too)."""
        with self._state:
            self._issues[(full_name, number)] = title

    def repository_add(
        self, full_name: str, *, private: bool = True, default: str = "main"
    ) -> None:
        with self._state:
            self._repos[full_name] = _Repo(private, default)

    def grant(self, token: str, full_name: str, *, push: bool = True) -> None:
        with self._state:
            self._repos[full_name].grants[token] = push

    def fail_next(
        self,
        method: str,
        path_suffix: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request whose path ends with ``path_suffix`` with this instead."""
        with self._state:
            self._faults.append(_Fault(method, path_suffix, status, body, dict(headers or {})))

    def rate_limit_next(self, method: str, path_suffix: str, *, reset: int) -> None:
        self.fail_next(
            method,
            path_suffix,
            403,
            {
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits",
            },
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        )

    def stall_next(self, path_suffix: str, seconds: float) -> None:
        """Hold the next request whose path ends with ``path_suffix`` for ``seconds``."""
        with self._state:
            self._stalls[path_suffix] = seconds

    def webhook_delivery(
        self, event: str, payload: dict[str, Any], *, secret: str, delivery: str = ""
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery as GitHub sends it: the body, and its headers signed with the
        installation's secret (X-Hub-Signature-256)."""
        body = json.dumps(payload).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        with self._state:
            self._deliveries += 1
            number = self._deliveries
        return body, {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or f"00000000-0000-4000-8000-{number:012d}",
            "X-Hub-Signature-256": f"sha256={signature}",
        }

    def pulls_created(self) -> list[dict[str, Any]]:
        return [
            r.body
            for r in self.requests
            if r.method == "POST" and r.status == 201 and r.path.endswith("/pulls")
        ]

    # --- serving -----------------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        record, token = self._read(h)
        if self._scripted(h, record):
            return None
        segments = [s for s in record.path.split("/") if s]
        if len(segments) == 4 and segments[2] == "pull" and h.command == "GET":
            return self._page(h, record, "/".join(segments[:2]), int(segments[3]))
        user = self._tokens.get(token)
        if user is None:
            return self._send(
                h,
                record,
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        # Classic tokens: GitHub lists their scopes on every answer.
        h.extra_headers = {"x-oauth-scopes": user.scopes} if user.scopes is not None else {}
        if segments == ["user"]:
            return self._user(h, record, user)
        if len(segments) >= 3 and segments[0] == "repos":
            return self._repo_route(h, record, user, token, segments)
        return self._send(h, record, 404, {"message": "Not Found"})

    def _read(self, h: _Handler) -> tuple[ApiRequest, str]:
        """The request as recorded (never its token), and its token."""
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        auth = h.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if auth.lower().startswith(("bearer ", "token ")) else ""
        record = ApiRequest(h.command, parts.path, parse_qs(parts.query), body, bool(token))
        self._record(record)
        return record, token

    def _scripted(self, h: _Handler, record: ApiRequest) -> bool:
        """Hold the request (stall_next) and answer a scripted fault (fail_next); True if so."""
        with self._state:
            stall = next((k for k in self._stalls if record.path.endswith(k)), None)
            seconds = self._stalls.pop(stall) if stall is not None else 0.0
        if seconds:
            time.sleep(seconds)
        with self._state:
            fault = next(
                (
                    f
                    for f in self._faults
                    if f.method == h.command and record.path.endswith(f.path_suffix)
                ),
                None,
            )
            if fault is not None:
                self._faults.remove(fault)
        if fault is None:
            return False
        self._send(h, record, fault.status, fault.body, fault.headers)
        return True

    def _user(self, h: _Handler, record: ApiRequest, user: _Token) -> None:
        headers = {}
        if user.expires:
            headers["github-authentication-token-expiration"] = user.expires
        return self._send(
            h, record, 200, {"login": user.login, "id": user.id, "name": user.name}, headers
        )

    def _repo_route(
        self, h: _Handler, record: ApiRequest, user: _Token, token: str, segments: list[str]
    ) -> None:
        full_name = f"{segments[1]}/{segments[2]}"
        with self._state:
            repo = self._repos.get(full_name)
        if repo is None or token not in repo.grants:
            return self._send(h, record, 404, {"message": "Not Found"})
        may_push = repo.grants[token]
        rest, method = segments[3:], h.command
        if not rest and method == "GET":
            return self._send(h, record, 200, self._repo_json(full_name, repo, may_push, user))
        if rest == ["pulls"] and method == "GET":
            return self._pulls_list(h, record, full_name, segments[1])
        if rest == ["pulls"] and method == "POST":
            return self._pull_create(h, record, full_name, may_push, record.body)
        if len(rest) == 2 and rest[0] == "pulls" and rest[1].isdigit() and method == "GET":
            return self._pull_get(h, record, full_name, int(rest[1]))
        if len(rest) == 2 and rest[0] == "issues" and rest[1].isdigit() and method == "GET":
            return self._issue_get(h, record, full_name, int(rest[1]))
        if len(rest) == 3 and rest[0] == "issues" and rest[2] == "comments" and method == "POST":
            return self._comment_create(h, record, full_name, rest[1], user)
        if (
            len(rest) == 3
            and rest[0] in ("issues", "pulls")
            and rest[1] == "comments"
            and method == "GET"
        ):
            return self._comment_get(h, record, full_name, rest[0], rest[2])
        if (
            len(rest) == 4
            and rest[0] in ("issues", "pulls")
            and rest[1] == "comments"
            and rest[3] == "reactions"
            and method == "POST"
        ):
            return self._reaction_create(h, record, full_name, rest[0], rest[2], user)
        return self._send(h, record, 404, {"message": "Not Found"})

    def _pulls_list(self, h: _Handler, record: ApiRequest, full_name: str, owner: str) -> None:
        head = (record.query.get("head") or [""])[0]
        found = [
            p
            for p in self.pulls
            if p["repo"] == full_name
            and p["state"] == "open"
            and (not head or f"{owner}:{p['head']['ref']}" == head)
        ]
        return self._send(h, record, 200, found)

    def _pull_get(self, h: _Handler, record: ApiRequest, full_name: str, number: int) -> None:
        pull = next(
            (p for p in self.pulls if p["repo"] == full_name and p["number"] == number), None
        )
        if pull is None:
            return self._send(h, record, 404, {"message": "Not Found"})
        return self._send(h, record, 200, pull)

    def _issue_get(self, h: _Handler, record: ApiRequest, full_name: str, number: int) -> None:
        """An issue, or a pull request as the issues endpoint shows one."""
        pull = next(
            (p for p in self.pulls if p["repo"] == full_name and p["number"] == number), None
        )
        with self._state:
            title = self._issues.get((full_name, number))
        if pull is not None:
            shown = {"number": number, "title": pull["title"]}
            return self._send(h, record, 200, {**shown, "pull_request": {"url": pull["html_url"]}})
        if title is None:
            return self._send(h, record, 404, {"message": "Not Found"})
        return self._send(h, record, 200, {"number": number, "title": title})

    def _comment_create(
        self, h: _Handler, record: ApiRequest, full_name: str, number: str, user: _Token
    ) -> None:
        body = record.body.get("body") if isinstance(record.body, dict) else None
        if not number.isdigit() or not isinstance(body, str) or not body:
            return self._send(h, record, 422, {"message": "Validation Failed"})
        with self._state:
            comment: dict[str, Any] = {
                "id": 9000 + len(self.comments),
                "repo": full_name,
                "issue": int(number),
                "body": body,
                "user": {"login": user.login, "id": user.id},
                "issue_url": f"{self.url}/repos/{full_name}/issues/{number}",
                "html_url": f"{self.url}/{full_name}/issues/{number}#issuecomment-x",
            }
            self.comments.append(comment)
            self._threads[("issues", comment["id"])] = comment
        return self._send(h, record, 201, comment)

    def _comment_find(self, full_name: str, kind: str, comment_id: str) -> dict[str, Any] | None:
        with self._state:
            found = self._threads.get((kind, int(comment_id))) if comment_id.isdigit() else None
        return found if found is not None and found["repo"] == full_name else None

    def _comment_get(
        self, h: _Handler, record: ApiRequest, full_name: str, kind: str, comment_id: str
    ) -> None:
        comment = self._comment_find(full_name, kind, comment_id)
        if comment is None:
            return self._send(h, record, 404, {"message": "Not Found"})
        shown = {k: v for k, v in comment.items() if k not in ("repo", "issue")}
        return self._send(h, record, 200, shown)

    def _reaction_create(
        self,
        h: _Handler,
        record: ApiRequest,
        full_name: str,
        kind: str,
        comment_id: str,
        user: _Token,
    ) -> None:
        content = record.body.get("content") if isinstance(record.body, dict) else None
        if not comment_id.isdigit() or content not in REACTIONS:
            return self._send(h, record, 422, {"message": "Validation Failed"})
        if self._comment_find(full_name, kind, comment_id) is None:
            return self._send(h, record, 404, {"message": "Not Found"})
        with self._state:
            reaction = {"repo": full_name, "comment": int(comment_id), "content": content}
            self.reactions.append(reaction | {"user": user.login})
        return self._send(h, record, 201, {"id": 1, "content": content})

    def _repo_json(self, full_name: str, repo: _Repo, may_push: bool, user: _Token) -> dict:
        return {
            "full_name": full_name,
            "private": repo.private,
            "default_branch": repo.default_branch,
            "permissions": {"admin": False, "push": may_push, "pull": True},
            "owner": {"login": full_name.split("/")[0]},
        }

    def _pull_create(
        self, h: _Handler, record: ApiRequest, full_name: str, may_push: bool, body: Any
    ) -> None:
        if not may_push:
            return self._send(
                h, record, 403, {"message": "Resource not accessible by personal access token"}
            )
        if not isinstance(body, dict) or not all(body.get(k) for k in ("title", "head", "base")):
            return self._send(h, record, 422, {"message": "Validation Failed"})
        owner = full_name.split("/")[0]
        head = body["head"].split(":")[-1]
        if self.head_exists is not None and not self.head_exists(full_name, head):
            return self._send(
                h,
                record,
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
                },
            )
        with self._state:
            if any(
                p["repo"] == full_name and p["head"]["ref"] == head and p["state"] == "open"
                for p in self.pulls
            ):
                exists = True
            else:
                exists = False
                # Issues and pull requests share their numbers, as on GitHub.
                taken = [p["number"] for p in self.pulls if p["repo"] == full_name]
                taken += [n for (repo, n) in self._issues if repo == full_name]
                number = max(taken, default=0) + 1
                pull = {
                    "repo": full_name,
                    "number": number,
                    "state": "open",
                    "title": body["title"],
                    "body": body.get("body") or "",
                    "head": {
                        "ref": head,
                        "label": f"{owner}:{head}",
                        "repo": {"full_name": full_name},
                    },
                    "base": {"ref": body["base"], "repo": {"full_name": full_name}},
                    "html_url": f"{self.url}/{full_name}/pull/{number}",
                }
                self.pulls.append(pull)
        if exists:
            return self._send(
                h,
                record,
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {owner}:{head}.",
                        }
                    ],
                },
            )
        return self._send(h, record, 201, pull)

    def _page(self, h: _Handler, record: ApiRequest, full_name: str, number: int) -> None:
        pull = next(
            (p for p in self.pulls if p["repo"] == full_name and p["number"] == number), None
        )
        if pull is None:
            return self._send(h, record, 404, {"message": "Not Found"})
        from html import escape

        page = (
            f"<!doctype html><title>{escape(pull['title'])} #{number}</title>"
            f"<h1>{escape(pull['title'])} <span>#{number}</span></h1>"
            f"<p>wants to merge <code>{escape(pull['head']['ref'])}</code> into "
            f"<code>{escape(pull['base']['ref'])}</code></p><pre>{escape(pull['body'])}</pre>"
        ).encode()
        record.status = 200
        h.send_response(200)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.send_header("Content-Length", str(len(page)))
        h.end_headers()
        h.wfile.write(page)
        return None

    @staticmethod
    def _send(
        h: _Handler,
        record: ApiRequest,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        record.status = status
        data = json.dumps(payload).encode() if payload is not None else b""
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for name, value in {**h.extra_headers, **(headers or {})}.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)
