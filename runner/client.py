"""cw's API as the runner uses it: JSON over HTTP with a bearer token (urllib only).

A refusal is an ``ApiError`` with the HTTP status and cw's stable ``code``; a server
that cannot be reached, or answers 5xx or 429, is retried with back-off for up to
``retry_seconds`` before ``ApiError`` (status 0 when nothing answered) is raised.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The statuses that say cw did not act on the request (so any request may be repeated).
NOT_DONE_STATUSES = frozenset({429, 503})


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        not_sent: bool = False,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        #: The request never reached cw (the connection was refused).
        self.not_sent = not_sent

    @property
    def not_done(self) -> bool:
        """Whether cw surely did not act on the request (so repeating it is safe)."""
        return self.not_sent or self.status in NOT_DONE_STATUSES


class Client:
    def __init__(
        self, server: str, token: str, *, timeout: float = 30.0, retry_seconds: float = 60.0
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry_seconds = retry_seconds

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        timeout: float | None = None,
        retry_seconds: float | None = None,
        idempotent: bool = True,
    ) -> Any:
        """The JSON answer of ``method path`` (None for 204); retried while cw is away.
        A request that must not happen twice (``idempotent=False``: a take-next, a
        heartbeat with usage, a resume) is repeated only when cw surely did not act on
        it; after a lost answer the error goes to the caller."""
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(
                {key: value for key, value in query.items() if value is not None}
            )
        data = None if body is None else json.dumps(body).encode()
        deadline = time.monotonic() + (
            self.retry_seconds if retry_seconds is None else retry_seconds
        )
        pause = 0.5
        while True:
            try:
                return self._once(method, url, data, timeout or self.timeout)
            except ApiError as error:
                if error.status and error.status not in RETRIED_STATUSES:
                    raise
                if not idempotent and not error.not_done:
                    raise
                if time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def _once(self, method: str, url: str, data: bytes | None, timeout: float) -> Any:
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                raw = answer.read()
                status = answer.status
        except urllib.error.HTTPError as error:
            raise _refusal(error.code, error.read()) from None
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(
                0,
                "unreachable",
                f"{self.server}: {reason}",
                not_sent=isinstance(reason, ConnectionRefusedError),
            ) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:  # not cw (a proxy's page, a wrong server URL)
            snippet = raw[:200].decode(errors="replace")
            raise ApiError(status, "not_json", f"{url} answered no JSON: {snippet}") from None

    # --- the operations the runner uses ------------------------------------------------

    def take_next(self, body: dict[str, Any], wait: float) -> dict[str, Any] | None:
        """The next run, or None when nothing fits within ``wait`` seconds."""
        answer = self.call(
            "POST",
            "/api/runs/take-next",
            {**body, "wait": wait},
            timeout=wait + 30,
            idempotent=False,
        )
        return answer if isinstance(answer, dict) else None

    def pages(self, path: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a paged list."""
        items: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = self.call("GET", path, query={**query, "limit": 100, "offset": offset})
            items.extend(page["items"])
            offset = page.get("next_offset")
        return items


def _refusal(status: int, raw: bytes) -> ApiError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or body.get("error") or f"http_{status}")
        message = str(
            body.get("message") or body.get("detail") or raw[:200].decode(errors="replace")
        )
        return ApiError(status, code, message, body.get("details"))
    return ApiError(status, f"http_{status}", raw[:200].decode(errors="replace"))
