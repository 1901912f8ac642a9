"""The core router's page operations: an initiative's tree of pages (Tiptap documents,
markdown accepted on write)."""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest
from ninja import Status

from core import services
from core.api.plans import READ_ERRORS, TAGS
from core.api.router import router
from core.models import Page
from core.repositories import InitiativeRepository, PageRepository
from core.schemas import ERRORS, Id, PageIn, PageMoveIn, PageOut, PagePatch

initiatives = InitiativeRepository()
pages = PageRepository()


@router.get(
    "/initiatives/{initiative_id}/pages", response={200: list[PageOut], **READ_ERRORS}, tags=TAGS
)
def list_pages(request: HttpRequest, initiative_id: Id) -> list[Page]:
    """The initiative's pages in tree order: a parent before its children, siblings by
    ``sort_order``."""
    initiatives.require(initiative_id)
    return pages.find_tree(initiative_id)


@router.post(
    "/initiatives/{initiative_id}/pages/root", response={200: PageOut, **ERRORS}, tags=TAGS
)
def retrieve_root_page(request: HttpRequest, initiative_id: Id) -> Page:
    """The initiative's root page, created (titled after the initiative) when missing."""
    return services.page_get_or_create_root(initiative_id=initiative_id)


@router.post("/initiatives/{initiative_id}/pages", response={201: PageOut, **ERRORS}, tags=TAGS)
def create_page(request: HttpRequest, initiative_id: Id, payload: PageIn) -> Status:
    """Add a page under ``parent_page_id`` (default: the root page, created when
    missing); content as Tiptap JSON or as markdown."""
    page = services.page_create(
        initiative_id=initiative_id,
        title=payload.title,
        parent_page_id=payload.parent_page_id,
        sort_order=payload.sort_order,
        **payload.content_changes(),
    )
    return Status(HTTPStatus.CREATED, page)


@router.get("/pages/{page_id}", response={200: PageOut, **READ_ERRORS}, tags=TAGS)
def retrieve_page(request: HttpRequest, page_id: Id) -> Page:
    """One page by id (404 ``page_not_found``)."""
    return pages.get(page_id)


@router.patch("/pages/{page_id}", response={200: PageOut, **ERRORS}, tags=TAGS)
def update_page(request: HttpRequest, page_id: Id, payload: PagePatch) -> Page:
    """Change a page's title, order or content (only the fields sent change)."""
    changes: dict[str, Any] = payload.dict(exclude_unset=True, include={"title", "sort_order"})
    return services.page_update(page_id=page_id, **changes, **payload.content_changes())


@router.delete("/pages/{page_id}", response={204: None, **ERRORS}, tags=TAGS)
def delete_page(request: HttpRequest, page_id: Id) -> Status:
    """Delete a page with the pages under it."""
    services.page_delete(page_id=page_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.post("/pages/{page_id}/move", response={200: PageOut, **ERRORS}, tags=TAGS)
def move_page(request: HttpRequest, page_id: Id, payload: PageMoveIn) -> Page:
    """Place a page under another page of its initiative (400 ``page_root_fixed`` for the
    root, ``page_parent_cycle`` under itself, ``page_parent_other_initiative`` elsewhere)."""
    return services.page_move(
        page_id=page_id, parent_page_id=payload.parent_page_id, sort_order=payload.sort_order
    )
