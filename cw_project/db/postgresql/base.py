"""Django's PostgreSQL backend, writing foreign keys with their ON DELETE rule, and
without the ``LIKE`` pattern indexes Django adds to text ids."""

from django.db.backends.postgresql import base, schema

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
