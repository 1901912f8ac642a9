"""Answer the requests Django cannot read, before any other middleware reads them.

Two kinds of request never reach a view in a readable state:

- a ``Host`` header naming no host of ``DJANGO_ALLOWED_HOSTS``: the first middleware to
  ask for the host (``CommonMiddleware``) raises ``DisallowedHost``, which Django turns
  into its HTML 400 page (its debug page with DEBUG on). Under the API it is answered
  here, first, as 400 ``invalid_host`` in the error shape;
- a chunked body (``Transfer-Encoding: chunked``, no ``Content-Length``) under a WSGI
  server: Django's ``WSGIRequest`` reads ``Content-Length`` bytes, none here, and the view
  would take the body as empty. A server that de-chunks the body and says so
  (``wsgi.input_terminated``, as gunicorn does) has it read here, up to
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413 beyond); one that does not (``make run``'s
  runserver) gets 411 ``length_required``. Under ASGI (``make serve``) the server
  de-chunks the body itself and nothing is done here;
- under the API, a query string of more parameters than Django reads
  (``DATA_UPLOAD_MAX_NUMBER_FIELDS``, 1,000) is 400 ``too_many_fields``, whether or not
  the operation reads its query.

Every other refusal of a request Django cannot read (a form body of too many fields or
files) is raised when a view first reads it and answered by the API's handlers
(``cw_project.errors``), or by ``handler400`` outside an operation.
"""

import io

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse

from cw_project.errors import LENGTH_REQUIRED, error_response, is_api_path
from cw_project.errors import unreadable_request_response as refused
from cw_project.middleware_modes import SyncAndAsyncMiddleware

#: Bytes read from a de-chunked body at a time.
READ_SIZE = 64 * 1024


def is_chunked(request: HttpRequest) -> bool:
    """Whether the request's body is sent chunked, without a ``Content-Length``."""
    encodings = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    return "chunked" in encodings and not request.META.get("CONTENT_LENGTH")


def read_chunked_body(request: WSGIRequest) -> None:
    """Read a body the server de-chunked into the request, as if it had come with its
    ``Content-Length``; ``RequestDataTooBig`` past ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    stream = request.environ["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    while part := stream.read(READ_SIZE):
        parts.append(part)
        size += len(part)
        if limit is not None and size > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
    body = b"".join(parts)
    request.META["CONTENT_LENGTH"] = str(len(body))
    request._stream = io.BytesIO(body)


def length_required(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path_info):
        return error_response(
            LENGTH_REQUIRED,
            "This server cannot read a chunked body: send it with a Content-Length.",
        )
    return HttpResponse(
        "Length Required (411): send the body with a Content-Length.\n",
        status=LENGTH_REQUIRED.status,
        content_type="text/plain; charset=utf-8",
    )


def check_request(request: HttpRequest) -> HttpResponse | None:
    """The answer to a request no view can read as it is, or None to let it through."""
    api = is_api_path(request.path_info)
    if api:
        try:
            request.get_host()
            # Parsed here, so a query string of over 1,000 parameters is refused alike
            # whether or not the operation reads its query (``TooManyFieldsSent``).
            request.GET  # noqa: B018
        except SuspiciousOperation as error:
            return refused(request, error)
    if isinstance(request, WSGIRequest) and is_chunked(request):
        if not request.environ.get("wsgi.input_terminated"):
            return length_required(request)
        try:
            read_chunked_body(request)
        except RequestDataTooBig as error:
            if api:
                return refused(request, error)
            raise
    return None


class UnreadableRequestMiddleware(SyncAndAsyncMiddleware):
    """``check_request`` before any other middleware (sync and async alike, so it adds
    no thread under ASGI)."""

    def call_sync(self, request: HttpRequest) -> HttpResponse:
        return check_request(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        answer = check_request(request)
        if answer is not None:
            return answer
        return await self.get_response(request)
