"""How API callers authenticate: tools with a bearer token, people with their admin session.

``API_AUTH`` is the NinjaAPI default, so every operation requires one of the two; the
bearer token is tried first. After success ``request.auth`` is the ``ApiToken`` (bearer)
or the staff ``User`` (session).

``TOOL_AUTH`` is for the few operations that answer a secret in clear (claiming an
account): tools only, since people never see a secret in clear. It takes a bearer token
and refuses a staff session with 403 ``tool_token_required``; the OpenAPI document
declares the bearer scheme alone for them.

A run's token (``ApiToken.run``, handed to a run's agent as ``CW_RUN_TOKEN``) is found
only while its run is live (401 once the run ended, as an unknown token is) and passes
only the operations of its scope, which ``agents.run_tokens`` lists and checks right
after the token is found: any other, or one naming another agent, task or run, is 403
``run_token_out_of_scope``.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth
from ninja.utils import check_csrf

from core.actors import actor_from_auth, set_actor
from core.errors import PermissionRequired
from core.models import ApiToken
from core.tokens import api_token_authenticate


class BearerTokenAuth(HttpBearer):
    """``Authorization: Bearer cw_…``: an active API token. Needs no CSRF token."""

    def __call__(self, request: HttpRequest) -> ApiToken | None:
        # Ninja's version logs the whole header when the scheme is not Bearer (with
        # DEBUG on), which would write a Basic credential to the log.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = api_token_authenticate(token)
        if found is not None:
            set_actor(actor_from_auth(found))
            if found.run_id is not None:
                check_run_token_scope(request, found)
        return found


#: The check of a run's token's request (``agents.run_tokens``, registered by the agents
#: app when it is ready, so core imports nothing of it).
_run_token_scope: Callable[[HttpRequest, ApiToken], None] | None = None


def register_run_token_scope(check: Callable[[HttpRequest, ApiToken], None]) -> None:
    """Name the function that refuses a run's token's request out of its scope."""
    global _run_token_scope
    _run_token_scope = check


def check_run_token_scope(request: HttpRequest, token: ApiToken) -> None:
    """Refuse a run's token's request its scope does not allow (403
    ``run_token_out_of_scope``); with no scope check registered, refuse them all."""
    if _run_token_scope is None:
        raise PermissionRequired(
            "A run's token may not call this operation.", code="run_token_out_of_scope"
        )
    _run_token_scope(request, token)


class StaffSessionAuth(SessionAuth):
    """The Django admin session of an active staff user, CSRF-checked on unsafe methods.

    Declines (so the request is unauthenticated, 401) when the request carries an
    ``Authorization`` header, since the caller chose a token and a bad token must not
    fall back to a cookie, and when no user is logged in. A logged-in user who is not
    staff is refused with 403 ``staff_required``; a staff request failing the CSRF check
    with 403 ``csrf_failed``.
    """

    def _get_key(self, request: HttpRequest) -> str | None:
        # Ninja's version checks CSRF here, before knowing whether anyone is logged in;
        # that turned a stale cookie or a bad bearer token into a CSRF failure (403)
        # instead of 401. The check is done in authenticate() instead.
        if "Authorization" in request.headers:
            return None
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not key or not user.is_authenticated:
            return None
        if not (user.is_active and user.is_staff):
            raise PermissionRequired("The API is open to staff users only.", code="staff_required")
        csrf_exempt = getattr(request, "_ninja_csrf_exempt", False)
        if self.csrf and not csrf_exempt and check_csrf(request) is not None:
            raise PermissionRequired(
                "CSRF check failed: send the csrftoken cookie's value in an X-CSRFToken header.",
                code="csrf_failed",
            )
        set_actor(actor_from_auth(user))
        return user


#: The default ``auth=`` of the NinjaAPI: a bearer token, else a staff session.
API_AUTH = [BearerTokenAuth(), StaffSessionAuth()]


class RefuseStaffSession:
    """Never authenticates; refuses a staff session with 403 ``tool_token_required``.

    Listed after ``BearerTokenAuth`` on an operation only tools may call, it turns what
    would be a bare 401 for a logged-in person into a refusal saying why. A request
    carrying an ``Authorization`` header (a bad token) or no staff session declines, so
    stays 401. Not a Ninja security scheme, so the OpenAPI document does not list it.
    """

    def __call__(self, request: HttpRequest) -> None:
        if "Authorization" in request.headers:
            return None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active and user.is_staff:
            raise PermissionRequired(
                "Claiming an account hands out its secrets, so it needs an API token "
                "('Authorization: Bearer <token>', see `manage.py create_api_token`), "
                "not a browser session.",
                code="tool_token_required",
            )
        return None


#: The ``auth=`` of operations that answer secrets: a bearer token only.
TOOL_AUTH = [BearerTokenAuth(), RefuseStaffSession()]
