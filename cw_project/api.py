"""The one NinjaAPI of cw, mounted at ``/api/``; each app contributes one router.

Conventions every operation follows (see ``core/schemas.py`` for the shared schemas):

- authentication is the default for every router (``core.auth.API_AUTH``): a
  bearer token for tools, or an admin session for a staff user; only ``/api/docs`` and
  ``/api/openapi.json`` answer without it;
- writes are limited per token (``core.ratelimits``: 429 ``throttled``, ``Retry-After``),
  and so are concurrent lists (``core.readlimits``: 429 ``reads_throttled``);
- every error has the ``ErrorOut`` shape (``cw_project/errors.py`` has the mapping);
- lists take ``PageParams`` and answer ``Page[ItemOut]``;
- handlers are named verb_noun (``list_proposals``, ``retrieve_whoami``); the name is
  also the URL name (``reverse("api-1:retrieve_whoami")``).

Routers are mounted without a prefix: each declares its resource paths itself
(``/proposals``, ``/agents/{agent_id}/proposals/counts``, ``/accounts``, …).
"""

from typing import Any

from django.urls import URLPattern, URLResolver, path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import ValidationError, ValidationErrorContext
from ninja.openapi.schema import OpenAPISchema

from agents.api import router as agents_router
from agents.api_runs import router as runs_router
from agents.run_tokens import document_run_token_scope
from core.api import router as core_router
from core.auth import API_AUTH
from core.ratelimits import WRITE_THROTTLE
from core.readlimits import is_capped, release_read_slot, take_read_slot
from cw_project.errors import (
    document_field_codes,
    document_read_throttling,
    document_throttling,
    install_error_handlers,
    unknown_api_path,
    with_json_routing_errors,
)
from cw_project.openapi import add_links
from cw_project.renderers import FastJSONRenderer
from reviews.api import router as reviews_router

API_VERSION = "1.0.0"


class CwNinjaAPI(NinjaAPI):
    """A NinjaAPI whose every failure, routing included, answers in the ``ErrorOut`` shape.

    Exception handlers replace Ninja's defaults; the URL list wraps each view so a wrong
    method gives a JSON 405 and ends with a catch-all giving a JSON 404 for unknown paths.
    """

    def set_default_exception_handlers(self) -> None:
        install_error_handlers(self)

    def validation_error_from_error_contexts(
        self, error_contexts: list[ValidationErrorContext]
    ) -> ValidationError:
        """Ninja's error, each item keeping the ``input`` Ninja drops: the handler tells a
        blank field from one refused otherwise by it, and never answers it."""
        error = super().validation_error_from_error_contexts(error_contexts)
        inputs = [
            item.get("input")
            for context in error_contexts
            for item in context.pydantic_validation_error.errors(include_url=False)
        ]
        for item, value in zip(error.errors, inputs, strict=True):
            item["input"] = value
        return error

    @property
    def urls(self) -> tuple[list[URLPattern | URLResolver], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern) and pattern.callback is not None:
                pattern.callback = with_json_routing_errors(pattern.callback)
        patterns.append(path("<path:unknown>", csrf_exempt(unknown_api_path), name="unknown"))
        return patterns, app_name, namespace

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """Ninja's document, post-processed (``cw_project.openapi``) with what Ninja cannot
        generate: the links from each create to the operations on what it created, the
        429s of the write rate limit and of the read cap, the code of each field that has
        one (``cw_project.errors``) and what a run's token may do with each operation
        (``agents.run_tokens``)."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        add_links(schema)
        document_throttling(schema)
        document_read_throttling(schema, self.capped_read_operation_ids())
        document_field_codes(schema)
        document_run_token_scope(schema)
        return schema

    def capped_read_operation_ids(self) -> set[str]:
        """The ids of the operations that take a read slot before they run
        (``core.readlimits``)."""
        return {
            operation.operation_id or self.get_openapi_operation_id(operation)
            for bound in self._get_bound_routers()
            for path_view in bound.path_operations.values()
            for operation in path_view.operations
            if is_capped(operation.view_func)
        }


api = CwNinjaAPI(
    title="cw API",
    version=API_VERSION,
    description=(
        "The control plane for teams of AI coding agents. Authenticate with "
        "`Authorization: Bearer <token>` (`manage.py create_api_token NAME`) or an admin "
        "session of a staff user. A run's own token (`run_token`, handed out with the run by "
        "take-next or a resume: the agent's `CW_RUN_TOKEN`) may call only the operations "
        "whose description says so, for its own agent, task, run and initiative (403 "
        "`run_token_out_of_scope` otherwise), and is 401 once its run has ended. Every "
        "error is `{code, message, details}`. Any request "
        "may also be refused before it reaches an operation, in the same shape: 400 "
        "`bad_request` (not HTTP the server can parse), `invalid_host` (a `Host` the "
        "server does not answer to) or `too_many_fields` (over 1,000 query parameters), "
        "408 `request_timeout` (a request not sent whole within a minute of its first "
        "byte), 411 `length_required` (a chunked body the server cannot read), 413 "
        "`payload_too_large`, 414 `uri_too_long` (a request target over 8 KiB) and 431 "
        "`headers_too_large` (header fields over 64 KiB)."
    ),
    auth=API_AUTH,
    throttle=[WRITE_THROTTLE],
    renderer=FastJSONRenderer(),
    urls_namespace="api-1",
)
# A capped list takes its read slot after authentication and gives it back once its
# response is made (core.readlimits); added before the routers, which inherit them.
api.add_decorator(take_read_slot, mode="operation")
api.add_decorator(release_read_slot, mode="view")
api.add_router("", core_router)
api.add_router("", agents_router)
api.add_router("", runs_router)
api.add_router("", reviews_router)
