"""Django's PostgreSQL backend, writing foreign keys with their ON DELETE rule, without
the ``LIKE`` pattern indexes Django adds to text ids, and reading timestamps at the
driver's own speed.

Django registers, for every connection, a ``timestamptz`` loader of its own: a Python
subclass that sets the connection's time zone on each value. Its mere presence took
psycopg off its compiled path for whole rows, tripling the time to read a page of a
hundred records. When the connection's time zone is UTC (``USE_TZ`` and no database
``TIME_ZONE``, cw's settings), the session runs in UTC and psycopg's own loader gives
exactly the same datetimes (``tzinfo`` is ``datetime.timezone.utc``), so that loader is
used (and Django's cursors are made without their check of it).
"""

import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base, schema
from django.utils.functional import cached_property
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format

from cw_project.db import OnDeleteSchemaEditorMixin


class DatabaseSchemaEditor(OnDeleteSchemaEditorMixin, schema.DatabaseSchemaEditor):
    def _create_like_index_sql(self, model, field):
        # Django gives every indexed varchar column a second, varchar_pattern_ops index
        # for LIKE 'prefix%' queries. Ids (primary and foreign keys) are only ever
        # compared for equality, so that second index would only slow every write.
        if field.primary_key or field.is_relation:
            return None
        return super()._create_like_index_sql(model, field)  # type: ignore[misc]


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor

    @cached_property
    def native_timestamps(self) -> bool:
        """Whether psycopg's own ``timestamptz`` loader gives what Django's would."""
        return bool(settings.USE_TZ) and self.timezone is datetime.UTC

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if self.native_timestamps and "context" in params:
            context = AdaptersMap(params["context"])
            assert _NATIVE_TIMESTAMPTZ_LOADER is not None
            context.register_loader("timestamptz", _NATIVE_TIMESTAMPTZ_LOADER)
            params["context"] = context
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        if not self.native_timestamps:
            return super().create_cursor(name)
        # Django's, without its check of the connection's timestamp loader (which would
        # register its own on the cursor): the connection's loader is right already.
        if not name:
            return self.connection.cursor()
        if self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            return base.ServerSideCursor(  # type: ignore[attr-defined]
                self.connection, name=name, scrollable=False, withhold=self.connection.autocommit
            )
        return self.connection.cursor(name, scrollable=False, withhold=self.connection.autocommit)


#: psycopg's compiled loader (a final class: it cannot carry Django's attribute).
_NATIVE_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(
    psycopg.postgres.types["timestamptz"].oid, Format.TEXT
)
