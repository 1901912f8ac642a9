"""The API router of the ``agents`` app: provider accounts.

Account secrets are write-only: every response uses ``AccountOut`` (which says whether
a secret is set, never what it is) except the claim, which hands the claimed account's
secrets to the tool that will run an agent under it. The claim therefore takes a bearer
token only (``TOOL_AUTH``): a person's staff session is refused, since people never see
a secret in clear.
"""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from agents import services
from agents.repositories import AccountRepository
from agents.schemas import (
    AccountClaimIn,
    AccountClaimOut,
    AccountExhaustIn,
    AccountIn,
    AccountOut,
    AccountPatch,
    ReleasedOut,
)
from core.auth import TOOL_AUTH
from core.schemas import ERRORS, Id, Page, PageParams, page_of

router = Router(tags=["accounts"])

accounts = AccountRepository()


class AccountFilters(PageParams):
    provider: Id | None = None


@router.get("/accounts", response={200: Page[AccountOut], **ERRORS})
def list_accounts(request: HttpRequest, filters: Query[AccountFilters]) -> dict[str, Any]:
    """Accounts in rotation order, optionally of one provider; secrets never included."""
    page = accounts.find_page(provider=filters.provider, limit=filters.limit, offset=filters.offset)
    return page_of(page.items, total=page.total, params=filters)


@router.post("/accounts", response={201: AccountOut, **ERRORS})
def create_account(request: HttpRequest, payload: AccountIn) -> Status:
    return Status(HTTPStatus.CREATED, services.account_create(**payload.dict()))


@router.post("/accounts/claim", response={200: AccountClaimOut, **ERRORS}, auth=TOOL_AUTH)
def claim_account(request: HttpRequest, payload: AccountClaimIn) -> Any:
    """Claim the next available account of a provider, round-robin, with its secrets.

    Tools only: needs a bearer token; a staff session is refused with 403
    ``tool_token_required``. 409 ``no_account_available`` when every account of the
    provider is exhausted.
    """
    return services.account_claim(provider=payload.provider)


@router.post("/accounts/clear-expired-exhaustion", response={200: ReleasedOut, **ERRORS})
def clear_expired_exhaustion(request: HttpRequest) -> dict[str, int]:
    """Release every account whose exhaustion has passed; answers how many."""
    return {"released": services.account_clear_expired_exhaustion()}


@router.get("/accounts/{account_id}", response={200: AccountOut, **ERRORS})
def retrieve_account(request: HttpRequest, account_id: Id) -> Any:
    return accounts.get(account_id)


@router.patch("/accounts/{account_id}", response={200: AccountOut, **ERRORS})
def update_account(request: HttpRequest, account_id: Id, payload: AccountPatch) -> Any:
    """Change only the fields sent; ``null`` for a secret clears it."""
    return services.account_update(account_id=account_id, **payload.dict(exclude_unset=True))


@router.delete("/accounts/{account_id}", response={204: None, **ERRORS})
def delete_account(request: HttpRequest, account_id: Id) -> Status:
    if not accounts.delete(account_id):
        raise accounts.not_found(account_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.post("/accounts/{account_id}/exhaust", response={200: AccountOut, **ERRORS})
def mark_account_exhausted(request: HttpRequest, account_id: Id, payload: AccountExhaustIn) -> Any:
    """Park the account (rate-limited) until the given time."""
    return services.account_mark_exhausted(account_id=account_id, until=payload.until)
