"""Django's SQLite backend, writing foreign keys with their ON DELETE rule and reading
timestamps in one step.

Django's own backend has the ``sqlite3`` driver parse every column declared
``datetime`` (``detect_types``) into a naive datetime, then makes it aware with
``datetime.replace`` (slow in CPython 3.11), costing several microseconds a timestamp:
most of the time of a page of a hundred records. Here the driver hands the stored text
over as it is, and the ORM's converters (which take text for every type: datetimes,
dates, times, booleans, decimals) read it once, straight into an aware datetime.
"""

import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.backends.sqlite3 import base, operations, schema

from cw_project.db import OnDeleteSchemaEditorMixin

_UTC = datetime.UTC
_fromisoformat = datetime.datetime.fromisoformat


class DatabaseSchemaEditor(OnDeleteSchemaEditorMixin, schema.DatabaseSchemaEditor):
    pass


class DatabaseOperations(operations.DatabaseOperations):
    def convert_datetimefield_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # Stored by Django as naive UTC text ("2026-11-29 06:49:58.123456"); with the
        # connection in UTC, parsing it with the offset appended is the aware datetime,
        # several times cheaper than parsing and then replace(tzinfo=...).
        if type(value) is str and settings.USE_TZ and self.connection.timezone is _UTC:
            try:
                return _fromisoformat(value + "+00:00")
            except ValueError:
                pass  # text with an offset of its own, or another format: Django's way
        return super().convert_datetimefield_value(value, expression, connection)


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
    ops_class = DatabaseOperations

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        # No parsing by declared type in the driver: the ORM's converters do it (once).
        params["detect_types"] = 0
        return params

    def get_new_connection(self, conn_params):
        # The embedded database lives under var/ (git ignores it): make the folder on
        # first use rather than when settings are imported.
        name = str(conn_params.get("database", ""))
        if name and name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        return super().get_new_connection(conn_params)
