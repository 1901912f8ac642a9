"""The one place where failures become HTTP responses, all with the ``ErrorOut`` shape.

``{"code": "<stable_code>", "message": "<human readable>", "details": {...}}``

=================================  ======  ==========================================
failure                            status  code
=================================  ======  ==========================================
a ``core.errors.DomainError``      its     the error's code, with the status the
                                   code's  catalogue declares for it (404 ``NotFound``,
                                           400 ``InvalidInput``, 409 ``Conflict``,
                                           403 ``PermissionRequired``)
a refused value of a field that     400     the field's code (``invalid_limit``,
has a code of its own                      ``empty_name``, …: ``FIELD_CODES``), the
                                           code a service gives it (``details.errors``)
other bad body/query/path params   422     ``validation_error`` (``details.errors``)
unparsable JSON body               422     ``malformed_json``
no or bad credentials              401     ``not_authenticated`` (+ ``WWW-Authenticate``)
``AuthorizationError``             403     ``permission_denied``
``Http404``, unknown ``/api/`` URL 404     ``not_found``
``DataError`` (unstorable value)   400     ``invalid_value``
``RequestDataTooBig`` (big body)   413     ``payload_too_large`` (``details.max_bytes``)
``TooManyFieldsSent`` (over 1,000  400     ``too_many_fields`` (``details.max_fields``)
query or form parameters)
``TooManyFilesSent``               400     ``too_many_files`` (``details.max_files``)
``DisallowedHost`` (foreign        400     ``invalid_host`` (answered by
``Host``)                                  ``ApiRequestMiddleware`` before any view)
other ``SuspiciousOperation``,     400     ``bad_request``
``BadRequest``
a chunked body a WSGI server       411     ``length_required`` (``ApiRequestMiddleware``)
does not de-chunk
too many writes (``Throttled``)    429     ``throttled`` (+ ``Retry-After``)
too many lists read at once        429     ``reads_throttled`` (+ ``Retry-After``;
(``ReadsThrottled``)                       ``core.readlimits``)
wrong HTTP method                  405     ``method_not_allowed`` (+ ``Allow``)
other ``HttpError``                its     the code declared for its status, else
                                           ``http_<status>``
unexpected exception               500     ``internal_error`` (logged, signalled)
=================================  ======  ==========================================

Outside Django, the HTTP server answers in the same shape what it refuses before Django
sees the request (``cw_project.server``): 400 ``bad_request`` for a request it cannot
parse, 408 ``request_timeout`` for one not sent whole in time, 414 ``uri_too_long``, 431
``headers_too_large``.

Every code is in the catalogue of ``core.errors`` (``docs/errors.md``); the codes only the
API answers are declared here. A code that replaced others (``core.errors.rename``) is
answered with them in ``deprecated_codes`` for one release, so a client still matching an
old code finds it there (``docs/decisions.md``, "Error codes").

No response ever describes an unexpected exception: its text may quote the request (a
submitted secret). It goes to the log, where it belongs.
"""

import functools
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.signals import got_request_exception
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils.log import log_response
from django.views import defaults
from ninja import NinjaAPI
from ninja.errors import (
    AuthenticationError,
    AuthorizationError,
    HttpError,
    Throttled,
    ValidationError,
)

from core.errors import DomainError, ErrorCode, declare, lookup
from core.readlimits import ReadsThrottled
from core.schemas.base import BLANK_FIELD_CODES, FIELD_CODES, field_refusal_code

# --- the codes only the API answers (the domain's are declared by the apps) -------------

BAD_REQUEST = declare("api", "bad_request", 400, "The request cannot be read.")
INVALID_HOST = declare(
    "api",
    "invalid_host",
    400,
    "The `Host` header names no host this server answers to (`DJANGO_ALLOWED_HOSTS`).",
)
TOO_MANY_FIELDS = declare(
    "api",
    "too_many_fields",
    400,
    "The query string or form body has more parameters than the API reads (`details.max_fields`).",
)
TOO_MANY_FILES = declare(
    "api",
    "too_many_files",
    400,
    "A multipart body has more files than the API reads (`details.max_files`).",
)
LENGTH_REQUIRED = declare(
    "api",
    "length_required",
    411,
    "A chunked body (no `Content-Length`) that this server cannot read: send "
    "`Content-Length` (`make serve` reads chunked bodies; `make run` does not).",
)
REQUEST_TIMEOUT = declare(
    "api",
    "request_timeout",
    408,
    "The request's head and body did not arrive whole within the time the server waits "
    "for them from their first byte (`details.max_seconds`); the connection is closed.",
)
URI_TOO_LONG = declare(
    "api",
    "uri_too_long",
    414,
    "The request line's target (path and query) is longer than the server reads "
    "(`details.max_bytes`).",
)
HEADERS_TOO_LARGE = declare(
    "api",
    "headers_too_large",
    431,
    "The request's header fields are larger than the server reads (`details.max_bytes`).",
)
NOT_AUTHENTICATED = declare(
    "api",
    "not_authenticated",
    401,
    "No credentials, or bad ones: send `Authorization: Bearer <token>` or log into the admin.",
)
PERMISSION_DENIED = declare(
    "api", "permission_denied", 403, "The credentials do not allow this operation."
)
NOT_FOUND = declare("api", "not_found", 404, "No API endpoint (or nothing) at this URL.")
METHOD_NOT_ALLOWED = declare(
    "api",
    "method_not_allowed",
    405,
    "The endpoint does not take this HTTP method (`details.allowed` and `Allow` list those it "
    "takes).",
)
CONFLICT = declare("api", "conflict", 409, "The request clashes with the current state.")
PAYLOAD_TOO_LARGE = declare(
    "api",
    "payload_too_large",
    413,
    "The request body is larger than the API reads (`details.max_bytes`).",
)
VALIDATION_ERROR = declare(
    "api",
    "validation_error",
    422,
    "A body, query or path parameter does not parse or validate (`details.errors`).",
)
MALFORMED_JSON = declare("api", "malformed_json", 422, "The request body is not valid JSON.")
THROTTLED = declare(
    "api",
    "throttled",
    429,
    "Too many writes from one token this minute (`details.limit_per_minute`); retry after "
    "`Retry-After` seconds (`details.retry_after`).",
)
READS_THROTTLED = declare(
    "api",
    "reads_throttled",
    429,
    "The token already has as many lists (or pages) being read as it may have at once "
    "(`details.concurrency`); retry after `Retry-After` seconds (`details.retry_after`).",
)
INTERNAL_ERROR = declare(
    "api", "internal_error", 500, "An unexpected error; it is logged, never described."
)

#: The refusal of a value the database cannot store: the same code a repository answers.
INVALID_VALUE = lookup("invalid_value")

#: The code of an ``HttpError`` (raised by Ninja) by its status; others are
#: ``http_<status>``.
_HTTP_ERROR_CODES: dict[int, ErrorCode] = {
    entry.status: entry
    for entry in (
        BAD_REQUEST,
        NOT_AUTHENTICATED,
        PERMISSION_DENIED,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        CONFLICT,
        PAYLOAD_TOO_LARGE,
        VALIDATION_ERROR,
        THROTTLED,
    )
}


def error_body(
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    replaces: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The ``ErrorOut`` body; ``deprecated_codes`` only for a code that replaced others."""
    body = {"code": code, "message": message, "details": details or {}}
    if replaces:
        body["deprecated_codes"] = list(replaces)
    return body


def error_response(
    code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> JsonResponse:
    """A JSON error response outside a Ninja operation (routing, method fallbacks)."""
    return JsonResponse(error_body(code.code, message, details, code.replaces), status=code.status)


#: Where the API is mounted (``cw_project.urls``): the paths that answer in its shape.
API_PATH_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    """Whether ``path`` (a request's ``path_info``) is under the API."""
    return path.startswith(API_PATH_PREFIX) or path == API_PATH_PREFIX.rstrip("/")


def unreadable_request(error: Exception) -> tuple[ErrorCode, str, dict[str, Any]]:
    """The code, message and details of a request Django refused to read: a
    ``SuspiciousOperation`` (a foreign host, too many parameters or files, a body too
    large) or a ``BadRequest``. The message never quotes the request."""
    if isinstance(error, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return (
            PAYLOAD_TOO_LARGE,
            f"The request body is larger than the {limit} bytes the API reads.",
            {"max_bytes": limit},
        )
    if isinstance(error, DisallowedHost):
        return (
            INVALID_HOST,
            "The Host header names no host this server answers to.",
            {},
        )
    if isinstance(error, TooManyFieldsSent):
        fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return (
            TOO_MANY_FIELDS,
            f"The request has more than the {fields} query or form parameters the API reads.",
            {"max_fields": fields},
        )
    if isinstance(error, TooManyFilesSent):
        files = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return (
            TOO_MANY_FILES,
            f"The request has more than the {files} files the API reads.",
            {"max_files": files},
        )
    return BAD_REQUEST, "The request cannot be read.", {}


def log_unreadable_request(request: HttpRequest, error: Exception, response: HttpResponse) -> None:
    """Log a refused request as Django does (``django.security.<Error>`` for a
    ``SuspiciousOperation``, ``django.request`` otherwise), for whoever watches those."""
    if isinstance(error, SuspiciousOperation):
        logger = logging.getLogger(f"django.security.{type(error).__name__}")
        log_response(
            str(error),
            exception=error,
            request=request,
            response=response,
            level="error",
            logger=logger,
        )
    else:
        log_response("%s: %s", str(error), request.path, response=response, request=request)


def unreadable_request_response(request: HttpRequest, error: Exception) -> JsonResponse:
    """The API's answer, logged, to a request Django refused to read."""
    code, message, details = unreadable_request(error)
    response = error_response(code, message, details)
    log_unreadable_request(request, error, response)
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: a refusal Django makes outside any API operation (a middleware
    reading the request) answers in the error shape under the API, Django's page
    elsewhere. (With DEBUG on Django shows its debug page instead; the API's own
    middleware and handlers answer first where it matters.)"""
    if is_api_path(request.path_info):
        code, message, details = unreadable_request(exception)
        return error_response(code, message, details)
    return defaults.bad_request(request, exception)


def _refused_field(loc: tuple[Any, ...]) -> tuple[str | None, bool]:
    """The request field a schema error's ``loc`` is about, and whether the error is
    about a part of its value: a query parameter (``("query", "limit")``, or
    ``("query", "filters", "kind", 1)`` for an item of a repeated one), or a top-level
    field of the JSON body (``("body", "payload", "name", …)``); (None, False) else."""
    if loc[:1] == ("query",):
        names = [part for part in loc[1:] if isinstance(part, str)]
        return (names[-1] if names else None), False
    if loc[:1] == ("body",) and len(loc) >= 3 and isinstance(loc[2], str):
        return loc[2], len(loc) > 3
    return None, False


def refusal_code(errors: list[dict[str, Any]]) -> ErrorCode:
    """The code of a request the schema refused with ``errors`` (pydantic's, with their
    ``input``): the first error's field code (``core.schemas.base.FIELD_CODES``) when
    every error has one, so a refusal the services also make answers their code; else
    ``validation_error``, which names no field, for a request malformed otherwise."""
    codes = []
    for error in errors:
        field, nested = _refused_field(tuple(error.get("loc", ())))
        code = field_refusal_code(field, error.get("type", ""), error.get("input"), nested=nested)
        if code is None:
            return VALIDATION_ERROR
        codes.append(code)
    return lookup(codes[0]) if codes else VALIDATION_ERROR


def domain_error_status(error: DomainError) -> int:
    """The HTTP status of a domain error: its code's, from the catalogue."""
    return lookup(error.code).status


def install_error_handlers(api: NinjaAPI) -> None:
    """Register on ``api`` the handler of every failure in the table above."""

    def respond(
        request: HttpRequest,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        status: int | None = None,
    ) -> HttpResponse:
        body = error_body(code.code, message, details, code.replaces)
        return api.create_response(request, body, status=status or code.status)

    def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        details = exc.details if isinstance(exc.details, dict) else {"value": exc.details}
        return respond(request, exc.error_code, exc.message, details)

    def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors
        ]
        summary = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in errors[:5]
        )
        return respond(
            request, refusal_code(exc.errors), f"Invalid request: {summary}.", {"errors": errors}
        )

    def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = respond(
            request,
            NOT_AUTHENTICATED,
            "Authentication required: send 'Authorization: Bearer <token>' "
            "(create one with `manage.py create_api_token`) or log into the admin as staff.",
        )
        response["WWW-Authenticate"] = 'Bearer realm="cw"'
        return response

    def on_authorization_error(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
        return respond(request, PERMISSION_DENIED, exc.message, status=exc.status_code)

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # Ninja wraps a body its JSON parser cannot read (JSONDecodeError, UnicodeDecodeError:
        # both ValueErrors) in HttpError(400), chaining the cause.
        # A body nested too deep for the parser raises RecursionError instead.
        if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
            return respond(request, MALFORMED_JSON, "The request body is not valid JSON.")
        if isinstance(exc, Throttled):
            limit = getattr(request, "cw_rate_limit", None)
            response = respond(
                request,
                THROTTLED,
                f"Too many writes: a token may make {limit} a minute; retry in {exc.wait} s.",
                {"retry_after": exc.wait, "limit_per_minute": limit},
            )
            # Ninja sets it again on a refusal of its own throttle check; an operation
            # that checks the limit itself (core.ratelimits.check_write_rate) has only this.
            if exc.wait is not None:
                response["Retry-After"] = str(math.ceil(exc.wait))
            return response
        code = _HTTP_ERROR_CODES.get(exc.status_code)
        if code is None:
            body = error_body(f"http_{exc.status_code}", exc.message)
            return api.create_response(request, body, status=exc.status_code)
        return respond(request, code, exc.message, status=exc.status_code)

    def on_reads_throttled(request: HttpRequest, exc: ReadsThrottled) -> HttpResponse:
        response = respond(
            request,
            READS_THROTTLED,
            f"Too many reads at once: a token may have {exc.concurrency} lists or pages "
            f"being read at a time; retry in {exc.retry_after} s.",
            {"retry_after": exc.retry_after, "concurrency": exc.concurrency},
        )
        response["Retry-After"] = str(exc.retry_after)
        return response

    def on_data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
        # A value the database cannot store (a NUL character on PostgreSQL, a number out
        # of range) that validation let through: the caller's input, not our failure.
        # The service's transaction has rolled back, so nothing was half-written.
        return respond(
            request,
            INVALID_VALUE,
            "A value in the request cannot be stored (e.g. a NUL character or a number "
            "out of range).",
        )

    def on_request_data_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        # Django raises it on the first read of request.body (Ninja reads the body outside
        # its parse-error wrapping) or request.POST (the session's CSRF check reads a form
        # body during authentication): either way it arrives here unwrapped.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return respond(
            request,
            PAYLOAD_TOO_LARGE,
            f"The request body is larger than the {limit} bytes the API reads.",
            {"max_bytes": limit},
        )

    def on_unreadable_request(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Raised when an operation first reads request.GET (over 1,000 parameters) or a
        # session's CSRF check reads request.POST: a refusal of the request, not a 500.
        code, message, details = unreadable_request(exc)
        response = respond(request, code, message, details)
        log_unreadable_request(request, exc, response)
        return response

    def on_http404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, NOT_FOUND, str(exc) or "Not found.")

    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # What Django does for an uncaught exception: log it and send the signal (error
        # reporters and the test client listen to it), but answer in the API's shape.
        # The exception stays out of the body even with DEBUG on: its text can quote the
        # request, secrets included; the log has it.
        response = respond(
            request, INTERNAL_ERROR, "An unexpected error occurred; it has been logged."
        )
        log_response(
            "Internal Server Error: %s",
            request.path,
            response=response,
            request=request,
            exception=exc,
        )
        got_request_exception.send(sender=None, request=request)
        return response

    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (DomainError, on_domain_error),
        (ValidationError, on_validation_error),
        (AuthenticationError, on_authentication_error),
        (AuthorizationError, on_authorization_error),
        (HttpError, on_http_error),
        (ReadsThrottled, on_reads_throttled),
        (Http404, on_http404),
        (DataError, on_data_error),
        (RequestDataTooBig, on_request_data_too_big),
        (SuspiciousOperation, on_unreadable_request),
        (BadRequest, on_unreadable_request),
        (Exception, on_unexpected),
    ]
    for exception_class, handler in handlers:
        api.add_exception_handler(exception_class, handler)


def _method_not_allowed(request: HttpRequest, response: HttpResponseNotAllowed) -> JsonResponse:
    allowed = sorted(m.strip() for m in response["Allow"].split(",") if m.strip())
    json_response = error_response(
        METHOD_NOT_ALLOWED,
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

        return markcoroutinefunction(functools.wraps(view)(async_wrapper))

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
        NOT_FOUND,
        f"No API endpoint at {request.path}; the documentation lists them all.",
        {"path": request.path},
    )


def document_field_codes(schema: dict[str, Any]) -> dict[str, Any]:
    """State in an OpenAPI document, on each query parameter and top-level body field with
    a code of its own (``FIELD_CODES``, ``BLANK_FIELD_CODES``), the code a refused value
    of it answers: ``x-error-code``, and a sentence of its description."""
    components = schema.get("components", {}).get("schemas", {})

    def resolved(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        return components[ref.rsplit("/", 1)[-1]] if isinstance(ref, str) else node

    def refuses_blank(node: dict[str, Any]) -> bool:
        """Whether the document refuses a blank string for ``node`` (by its pattern)."""
        node = resolved(node)
        choices = node.get("anyOf", [node])
        return any(
            isinstance(pattern := resolved(choice).get("pattern"), str)
            and re.search(pattern, " ") is None
            for choice in choices
        )

    def document(field: dict[str, Any], name: str) -> None:
        if name in FIELD_CODES:
            _document_field_code(field, FIELD_CODES[name], "A refused value is 400 `%s`.")
        elif name in BLANK_FIELD_CODES and refuses_blank(field.get("schema", field)):
            _document_field_code(
                field,
                BLANK_FIELD_CODES[name],
                "Blank (or left out, or null, where required) is 400 `%s`.",
            )

    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    document(parameter, parameter["name"])
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            if body is None:
                continue
            body = resolved(body)
            if body.get("type") == "array":
                body = resolved(body.get("items", {}))
            for name, field in body.get("properties", {}).items():
                document(field, name)
    return schema


def _document_field_code(field: dict[str, Any], code: str, sentence: str) -> None:
    if field.get("x-error-code") == code:
        return  # a component already stated (several operations share it)
    field["x-error-code"] = code
    sentence = sentence % code
    description = field.get("description")
    field["description"] = f"{description.rstrip()} {sentence}" if description else sentence


def document_throttling(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare in an OpenAPI document, on every write, the 429 of ``core.ratelimits``."""
    from core.ratelimits import SAFE_METHODS

    refusal = {
        "description": "Too Many Requests: the token's writes this minute are used up.",
        "headers": {
            "Retry-After": {
                "description": "Seconds until the token may write again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    for operations in schema["paths"].values():
        for method, operation in operations.items():
            if method.upper() not in SAFE_METHODS:
                operation["responses"]["429"] = refusal
    return schema


def document_read_throttling(schema: dict[str, Any], operation_ids: set[str]) -> dict[str, Any]:
    """Declare in an OpenAPI document, on each operation of ``operation_ids`` (the lists
    ``core.readlimits`` caps), its 429 ``reads_throttled``."""
    refusal = {
        "description": (
            "Too Many Requests: the token already has as many lists being read as it may "
            "have at once (`reads_throttled`); a long poll (`wait`) waits instead."
        ),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    for operations in schema["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and operation.get("operationId") in operation_ids:
                operation["responses"]["429"] = refusal
    return schema
