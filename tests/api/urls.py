"""A test-only API, built like the real one (``CwNinjaAPI``, default auth, error handlers),
with endpoints that exercise what the real API has no endpoint for yet: each error class,
a JSON body, an unsafe method, a paginated list. Use with ``@pytest.mark.urls``."""

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.urls import path
from ninja import Query, Router, Schema
from ninja.errors import AuthorizationError, HttpError

from core import errors
from core.auth import API_AUTH
from core.models import ApiToken
from core.repositories import TaskRepository
from core.schemas import Page, PageParams, paginate
from cw_project.api import CwNinjaAPI

RAISED = {
    "domain": errors.DomainError("Generic refusal.", code="invalid_value"),
    "not_found": TaskRepository().not_found("t1"),
    "invalid_input": errors.InvalidInput("Bad value.", code="invalid_field", details={"f": 1}),
    "conflict": errors.Conflict("Clash.", code="token_already_revoked"),
    "transition": errors.TransitionNotAllowed("Cannot go there.", code="task_not_ready"),
    "cycle": errors.DependencyCycle("Cycle.", details={"cycle": ["a", "b", "a"]}),
    "permission": errors.PermissionRequired("Needs a person.", code="person_required"),
    "authorization": AuthorizationError(message="Not yours."),
    "http_error": HttpError(418, "I am a teapot."),
    "http404": Http404("No such thing."),
    "unexpected": RuntimeError("boom"),
}

router = Router()


class EchoIn(Schema):
    name: str
    count: int = 1


class TokenOut(Schema):
    name: str
    prefix: str


@router.get("/raise/{kind}")
def retrieve_error(request: HttpRequest, kind: str) -> None:
    raise RAISED[kind]


@router.post("/echo", response=EchoIn)
def create_echo(request: HttpRequest, payload: EchoIn) -> EchoIn:
    return payload


@router.get("/tokens", response=Page[TokenOut])
def list_tokens(request: HttpRequest, page: Query[PageParams]) -> dict:
    queryset: QuerySet = ApiToken.objects.all()
    return paginate(queryset, page)


test_api = CwNinjaAPI(title="test", version="0", auth=API_AUTH, urls_namespace="api-test")
test_api.add_router("", router)

urlpatterns = [path("api/", test_api.urls)]
