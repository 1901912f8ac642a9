"""Django's PostgreSQL backend, writing foreign keys with their ON DELETE rule."""

from django.db.backends.postgresql import base, schema

from cw_project.db import OnDeleteSchemaEditorMixin


class DatabaseSchemaEditor(OnDeleteSchemaEditorMixin, schema.DatabaseSchemaEditor):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
