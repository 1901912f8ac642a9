"""The one place where failures become HTTP responses, all with the ``ErrorOut`` shape.

``{"code": "<stable_code>", "message": "<human readable>", "details": {...}}``

=================================  ======  ==========================================
failure                            status  code
=================================  ======  ==========================================
``core.errors.NotFound``           404     the error's code (``task_not_found``, …)
``InvalidInput``                   400     the error's code
``Conflict`` and subclasses        409     the error's code
``PermissionRequired``             403     the error's code
any other ``DomainError``          400     the error's code
bad body/query/path parameters     422     ``validation_error`` (``details.errors``)
unparsable JSON body               422     ``malformed_json``
no or bad credentials              401     ``not_authenticated`` (+ ``WWW-Authenticate``)
``AuthorizationError``             403     ``permission_denied``
``Http404``, unknown ``/api/`` URL 404     ``not_found``
``DataError`` (unstorable value)   400     ``invalid_value``
``RequestDataTooBig`` (big body)   413     ``payload_too_large`` (``details.max_bytes``)
wrong HTTP method                  405     ``method_not_allowed`` (+ ``Allow``)
other ``HttpError``                its     ``http_<status>`` or a name per status
unexpected exception               500     ``internal_error`` (logged, signalled)
=================================  ======  ==========================================

No response ever describes an unexpected exception: its text may quote the request (a
submitted secret). It goes to the log, where it belongs.
"""

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.signals import got_request_exception
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils.log import log_response
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from core.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionRequired

#: Status of each domain error class; the most specific class listed wins.
DOMAIN_ERROR_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    InvalidInput: 400,
    Conflict: 409,
    PermissionRequired: 403,
}

_HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "throttled",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``ErrorOut`` body."""
    return {"code": code, "message": message, "details": details or {}}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JsonResponse:
    """A JSON error response outside a Ninja operation (routing, method fallbacks)."""
    return JsonResponse(error_body(code, message, details), status=status)


def domain_error_status(error: DomainError) -> int:
    """The HTTP status of a domain error: its most specific class's, else 400."""
    for cls in type(error).__mro__:
        if cls in DOMAIN_ERROR_STATUS:
            return DOMAIN_ERROR_STATUS[cls]
    return 400


def install_error_handlers(api: NinjaAPI) -> None:
    """Register on ``api`` the handler of every failure in the table above."""

    def respond(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
        return api.create_response(request, body, status=status)

    def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        details = exc.details if isinstance(exc.details, dict) else {"value": exc.details}
        return respond(
            request, domain_error_status(exc), error_body(exc.code, exc.message, details)
        )

    def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors
        ]
        summary = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in errors[:5]
        )
        body = error_body("validation_error", f"Invalid request: {summary}.", {"errors": errors})
        return respond(request, 422, body)

    def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        body = error_body(
            "not_authenticated",
            "Authentication required: send 'Authorization: Bearer <token>' "
            "(create one with `manage.py create_api_token`) or log into the admin as staff.",
        )
        response = respond(request, 401, body)
        response["WWW-Authenticate"] = 'Bearer realm="cw"'
        return response

    def on_authorization_error(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
        return respond(request, exc.status_code, error_body("permission_denied", exc.message))

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # Ninja wraps a body its JSON parser cannot read (JSONDecodeError, UnicodeDecodeError:
        # both ValueErrors) in HttpError(400), chaining the cause.
        # A body nested too deep for the parser raises RecursionError instead.
        if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
            body = error_body("malformed_json", "The request body is not valid JSON.")
            return respond(request, 422, body)
        code = _HTTP_ERROR_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return respond(request, exc.status_code, error_body(code, exc.message))

    def on_data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
        # A value the database cannot store (a NUL character on PostgreSQL, a number out
        # of range) that validation let through: the caller's input, not our failure.
        # The service's transaction has rolled back, so nothing was half-written.
        body = error_body(
            "invalid_value",
            "A value in the request cannot be stored (e.g. a NUL character or a number "
            "out of range).",
        )
        return respond(request, 400, body)

    def on_request_data_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        # Django raises it on the first read of request.body (Ninja reads the body outside
        # its parse-error wrapping) or request.POST (the session's CSRF check reads a form
        # body during authentication): either way it arrives here unwrapped.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = error_body(
            "payload_too_large",
            f"The request body is larger than the {limit} bytes the API reads.",
            {"max_bytes": limit},
        )
        return respond(request, 413, body)

    def on_http404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, error_body("not_found", str(exc) or "Not found."))

    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # What Django does for an uncaught exception: log it and send the signal (error
        # reporters and the test client listen to it), but answer in the API's shape.
        # The exception stays out of the body even with DEBUG on: its text can quote the
        # request, secrets included; the log has it.
        body = error_body("internal_error", "An unexpected error occurred; it has been logged.")
        response = respond(request, 500, body)
        log_response(
            "Internal Server Error: %s",
            request.path,
            response=response,
            request=request,
            exception=exc,
        )
        got_request_exception.send(sender=None, request=request)
        return response

    api.add_exception_handler(DomainError, on_domain_error)
    api.add_exception_handler(ValidationError, on_validation_error)
    api.add_exception_handler(AuthenticationError, on_authentication_error)
    api.add_exception_handler(AuthorizationError, on_authorization_error)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(Http404, on_http404)
    api.add_exception_handler(DataError, on_data_error)
    api.add_exception_handler(RequestDataTooBig, on_request_data_too_big)
    api.add_exception_handler(Exception, on_unexpected)


def _method_not_allowed(request: HttpRequest, response: HttpResponseNotAllowed) -> JsonResponse:
    allowed = sorted(m.strip() for m in response["Allow"].split(",") if m.strip())
    json_response = error_response(
        405,
        "method_not_allowed",
        f"{request.method} is not allowed here; use {', '.join(allowed)}.",
        {"allowed": allowed},
    )
    json_response["Allow"] = response["Allow"]
    return json_response


def with_json_routing_errors(view: Callable) -> Callable:
    """Wrap an API URL's view so a wrong method (405) or ``Http404`` raised outside any
    operation (the API root) answers in the error shape rather than Django's HTML."""

    def convert(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if isinstance(response, HttpResponseNotAllowed):
            return _method_not_allowed(request, response)
        return response

    if iscoroutinefunction(view):

        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                response = await view(request, *args, **kwargs)
            except Http404:
                return unknown_api_path(request)
            return convert(request, response)

        wrapper = functools.wraps(view)(async_wrapper)
        return markcoroutinefunction(wrapper)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return unknown_api_path(request)
        return convert(request, response)

    return wrapper


def unknown_api_path(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The 404 of a URL under the API that no route matches."""
    return error_response(
        404,
        "not_found",
        f"No API endpoint at {request.path}; the documentation lists them all.",
        {"path": request.path},
    )
