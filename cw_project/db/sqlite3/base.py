"""Django's SQLite backend, writing foreign keys with their ON DELETE rule."""

from pathlib import Path

from django.db.backends.sqlite3 import base, schema

from cw_project.db import OnDeleteSchemaEditorMixin


class DatabaseSchemaEditor(OnDeleteSchemaEditorMixin, schema.DatabaseSchemaEditor):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor

    def get_new_connection(self, conn_params):
        # The embedded database lives under var/ (git ignores it): make the folder on
        # first use rather than when settings are imported.
        name = str(conn_params.get("database", ""))
        if name and name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        return super().get_new_connection(conn_params)
