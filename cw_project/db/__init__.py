"""Database backends: Django's own, plus the seed's delete rules in the schema itself.

Django enforces ``on_delete`` in Python, so its foreign keys are plain ``REFERENCES``
in the database. The seed's schema declares ``ON DELETE CASCADE`` / ``SET NULL`` on the
foreign keys themselves, so a row deleted by any client (a SQL console, another tool)
keeps the same integrity as one deleted through the ORM. These backends add that clause
when the schema editor writes a foreign key; the migrations stay exactly what
``makemigrations`` generates.
"""

from typing import Any

from django.db import models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

ON_DELETE_SQL: dict[Any, str] = {
    models.CASCADE: "CASCADE",
    models.SET_NULL: "SET NULL",
    models.PROTECT: "RESTRICT",
    models.RESTRICT: "RESTRICT",
}


def on_delete_clause(field: models.Field) -> str:
    """`` ON DELETE <rule>`` for a foreign key, or nothing when the ORM handles it alone."""
    rule = ON_DELETE_SQL.get(getattr(field.remote_field, "on_delete", None))
    return f" ON DELETE {rule}" if rule else ""


def _with_clause(template: str, clause: str) -> str:
    return template.replace("%(to_column)s)", "%(to_column)s)" + clause, 1)


class OnDeleteSchemaEditorMixin(BaseDatabaseSchemaEditor):
    """Writes each foreign key with the database-level form of its ``on_delete``."""

    def column_sql(self, model, field, include_default=False):
        # The inline foreign-key templates are formatted without the field, right after
        # this call and for this same field (in table_sql() and add_field()), so set
        # them for this field here.
        if field.remote_field and field.db_constraint:
            clause = on_delete_clause(field)
            for name in ("sql_create_inline_fk", "sql_create_column_inline_fk"):
                template = getattr(type(self), name)
                if template:
                    setattr(self, name, _with_clause(template, clause))
        return super().column_sql(model, field, include_default=include_default)

    def _create_fk_sql(self, model, field, suffix):
        statement = super()._create_fk_sql(model, field, suffix)  # type: ignore[misc]
        statement.template = _with_clause(statement.template, on_delete_clause(field))
        return statement
