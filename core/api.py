"""The API router of the ``core`` app: planning records, and who is calling."""

from django.http import HttpRequest
from ninja import Router

from core.models import ApiToken
from core.schemas import AUTH_ERRORS, WhoamiOut

router = Router(tags=["core"])


@router.get("/whoami", response={200: WhoamiOut, **AUTH_ERRORS})
def retrieve_whoami(request: HttpRequest) -> dict[str, str]:
    """Who the API thinks is calling: a token (by name) or a staff user (by username)."""
    if isinstance(request.auth, ApiToken):
        return {"kind": "token", "name": request.auth.name}
    return {"kind": "user", "name": request.auth.get_username()}
