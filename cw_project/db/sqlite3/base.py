"""Django's SQLite backend, writing foreign keys with their ON DELETE rule."""

from django.db.backends.sqlite3 import base, schema

from cw_project.db import OnDeleteSchemaEditorMixin


class DatabaseSchemaEditor(OnDeleteSchemaEditorMixin, schema.DatabaseSchemaEditor):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
