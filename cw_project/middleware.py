"""Refuse, with a 400, a URL whose path or query string cannot be text the database stores.

A NUL character (``%00``) in an object id or a filter value reaches the database as a
query parameter: SQLite finds nothing, but PostgreSQL refuses the statement and the
admin answered 500. Bytes that are not UTF-8 (``%FF``, or ``%ED%A0%80``, an encoded
lone surrogate) are no better: Django replaces them (U+FFFD in a query string, ``%FF``
kept as text in a path) and the page then shows results for a value nobody sent. Such a
URL is never a link cw made, so it is answered 400 before any view runs: every admin
page (cw's, Django's auth admin, changelists, change, history, delete, autocomplete)
is covered at once, whatever its lookups.

The API is left to itself: it validates its path and query parameters and answers a
NUL there in its own error shape (``cw_project/errors.py``): 422 ``validation_error``, or
the parameter's own code (400 ``invalid_status``) when it has one.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.deprecation import MiddlewareMixin

from cw_project.api import api

BAD_URL_MESSAGE = (
    "Bad Request (400): the URL's path or query string contains a NUL character or bytes "
    "that are not valid UTF-8, which no cw page accepts.\n"
)


def _is_storable_text(data: bytes) -> bool:
    """``data`` is UTF-8 (lone surrogates are not) without a NUL character."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


def _path_bytes(request: HttpRequest) -> bytes:
    """The bytes of the request's path, as near as Django leaves them.

    The raw path is gone by now: Django has decoded it and written each byte that is
    not UTF-8 back as ``%XX`` text (``repercent_broken_unicode``), so the path is
    percent-decoded once more. That also refuses a ``%`` sent as ``%25``, which no URL
    cw makes holds (the admin writes a ``%`` in an id as ``_25``).
    """
    return unquote_to_bytes(request.path_info.encode("utf-8", "surrogatepass"))


def _query_bytes(request: HttpRequest) -> bytes:
    """The bytes of the query string as the client sent them."""
    value = request.META.get("QUERY_STRING", "")
    if isinstance(request, WSGIRequest):
        # PEP 3333: each byte of the request is one character of a latin-1 string.
        return value.encode("iso-8859-1")
    # ASGI: the handler has decoded the bytes as UTF-8.
    return value.encode("utf-8", "surrogatepass")


def _query_is_storable(query: bytes) -> bool:
    """Every key and value of ``query``, percent-decoded, is storable text."""
    for field in query.split(b"&"):
        for part in field.split(b"=", 1):
            if not _is_storable_text(unquote_to_bytes(part.replace(b"+", b" "))):
                return False
    return True


class RejectUnstorableUrlMiddleware(MiddlewareMixin):
    """Answer 400 to a non-API request whose path or query string holds a NUL or bytes
    that are not UTF-8 (the path as sent; the query's keys and values once decoded).
    Sync and async alike (``MiddlewareMixin``): it only looks, in ``process_view``."""

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        # After URL resolution, so the API is told apart by its namespace, not a prefix.
        match = request.resolver_match
        if match is not None and api.urls_namespace in match.namespaces:
            return None
        if _is_storable_text(_path_bytes(request)) and _query_is_storable(_query_bytes(request)):
            return None
        return HttpResponseBadRequest(BAD_URL_MESSAGE, content_type="text/plain; charset=utf-8")
