"""People: the site's users, as the records a message from or to a person names.

Read only (people's accounts are Django's to write), so not a ``Repository``: it offers
the one check the services need.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from core.errors import NotFound


class PersonRepository:
    """The people who may sign in (``AUTH_USER_MODEL``)."""

    def require(self, id: Any) -> None:
        """Refuse an id that names no person (``person_not_found``); a person is named by
        the text of their id too (a message's ``sender_id``), and an id that cannot be
        one is no person's."""
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(id)
        except ValidationError:
            pk = None
        if pk is None or not model._default_manager.filter(pk=pk).exists():
            raise NotFound(
                f"Person '{id}' does not exist.",
                code="person_not_found",
                details={"id": str(id)},
            )
