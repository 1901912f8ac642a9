"""Pages: one tree per initiative with exactly one root (a database constraint)."""

from typing import Any, NotRequired, TypedDict

from typing_extensions import Unpack

from core.errors import Conflict, InvalidInput
from core.models import Initiative, Page
from core.repositories.base import Repository, RevertibleRecords, relation_id, seed_only
from core.repositories.initiatives import InitiativeRepository


class PageFields(TypedDict):
    title: str
    initiative: NotRequired[Initiative]
    initiative_id: NotRequired[str]
    parent_page: NotRequired[Page | None]
    parent_page_id: NotRequired[str | None]
    content: NotRequired[str | None]
    sort_order: NotRequired[int]


class PageChanges(TypedDict, total=False):
    title: str
    parent_page: Page | None
    parent_page_id: str | None
    content: str | None
    sort_order: int


class PageRepository(RevertibleRecords[Page], Repository[Page]):
    """Pages form one tree per initiative with exactly one root (a database constraint)."""

    model = Page
    slug = "page"
    label = "Page"
    read_only_fields = Repository.read_only_fields | {"initiative"}

    def create(self, **fields: Unpack[PageFields]) -> Page:
        """Add a page under ``parent_page`` (of the same initiative, which it takes when
        none is given), or the initiative's root page when it has no parent."""
        values: dict[str, Any] = dict(fields)
        parent_id = relation_id(values, "parent_page")[1]
        if parent_id is not None:
            parent_initiative = self.initiative_id_of(parent_id)
            initiative_id = relation_id(values, "initiative")[1]
            if initiative_id is None:
                values.pop("initiative", None)
                values["initiative_id"] = parent_initiative
            elif initiative_id != parent_initiative:
                raise InvalidInput(
                    "A page's parent must belong to the same initiative.",
                    code="page_parent_other_initiative",
                )
        try:
            return self._create(**values)
        except Conflict as error:
            raise Conflict(
                "This initiative already has a root page; give the new page a parent.",
                code="page_root_taken",
            ) from error

    def update(self, page: Page | str, /, **changes: Unpack[PageChanges]) -> Page:
        """Update a page; a new parent must be a page of its initiative that is not the
        page itself or below it, and the root stays the root."""
        values: dict[str, Any] = dict(changes)
        obj = page if isinstance(page, Page) else self.get(page)
        has_parent, parent_id = relation_id(values, "parent_page")
        if has_parent and parent_id != obj.parent_page_id:
            if obj.parent_page_id is None or parent_id is None:
                raise InvalidInput(
                    "The root page stays the root, and every other page has a parent.",
                    code="page_root_fixed",
                )
            if self.initiative_id_of(parent_id) != obj.initiative_id:
                raise InvalidInput(
                    "A page's parent must belong to the same initiative.",
                    code="page_parent_other_initiative",
                )
            if obj.pk in self._ancestor_ids("parent_page_id", parent_id):
                raise InvalidInput(
                    "A page cannot be placed under itself or one of its own pages.",
                    code="page_parent_cycle",
                )
        return self._update(obj, **values)

    def delete(self, id: str) -> bool:
        """Delete a page with the pages under it."""
        return self._delete(id)

    def initiative_id_of(self, page_id: str) -> str:
        """The id of the page's initiative (``page_not_found`` when there is none)."""
        found = (
            self.model._default_manager.filter(pk=page_id)
            .values_list("initiative_id", flat=True)
            .first()
        )
        if found is None:
            raise self.not_found(page_id)
        return found

    def find_in_initiative(self, page_id: str, initiative_id: str) -> Page | None:
        """The page, when it belongs to ``initiative_id``; else None."""
        return self.queryset().filter(pk=page_id, initiative_id=initiative_id).first()

    def find_by_ids(self, ids: list[str]) -> list[Page]:
        """The pages of ``ids`` that exist, oldest first."""
        return list(self.queryset().filter(pk__in=ids).order_by("created_at", "id"))

    def find_tree(self, initiative_id: str) -> list[Page]:
        """Every page of the initiative in tree order (depth first: a parent before its
        children, siblings by ``sort_order`` then age), in one query."""
        rows = list(
            self.queryset()
            .filter(initiative_id=initiative_id)
            .order_by("sort_order", "created_at", "id")
        )
        children: dict[str | None, list[Page]] = {}
        for page in rows:
            children.setdefault(page.parent_page_id, []).append(page)
        ordered: list[Page] = []
        stack = list(reversed(children.get(None, [])))
        while stack:
            page = stack.pop()
            ordered.append(page)
            stack.extend(reversed(children.get(page.pk, [])))
        return ordered

    def find_by_initiative_id(self, initiative_id: str) -> list[Page]:
        return list(self.queryset().filter(initiative_id=initiative_id))

    def find_root_page(self, initiative_id: str) -> Page | None:
        return self.queryset().filter(initiative_id=initiative_id, parent_page__isnull=True).first()

    def get_or_create_root_page(self, initiative_id: str, *, title: str | None = None) -> Page:
        """The initiative's root page, created (titled after the initiative) if missing.

        Safe when two callers race: the partial unique index lets only one insert win and
        the loser reads the winner's page.
        """
        page = self.find_root_page(initiative_id)
        if page is not None:
            return page
        name = InitiativeRepository().name_of(initiative_id)
        try:
            return self._create(initiative_id=initiative_id, title=title or name)
        except Conflict:
            page = self.find_root_page(initiative_id)
            if page is None:
                raise
            return page

    def descendant_ids(self, page_id: str) -> list[str]:
        """The ids of the pages under the page at every depth (one query per level)."""
        found: list[str] = []
        level = [page_id]
        while level:
            level = list(
                self.model._default_manager.filter(parent_page_id__in=level)
                .exclude(pk__in=[page_id, *found])
                .order_by("sort_order", "created_at", "id")
                .values_list("pk", flat=True)
            )
            found.extend(level)
        return found

    @seed_only
    def find_by_parent_page_id(self, parent_page_id: str) -> list[Page]:
        return list(self.queryset().filter(parent_page_id=parent_page_id))
