"""The error codes the operator features raise (``operations``): importing an export.

Loaded by ``OperationsConfig.ready()``, like each app's ``errors`` module (``core.errors``).
"""

from core.errors import Conflict, InvalidInput, declare

# Import of an initiative's export (operations.transfer, cw_import).
declare(
    "operations",
    "import_invalid_document",
    InvalidInput,
    "The file is not a cw initiative export, or it is malformed (unknown tables or "
    "columns, rows without ids, counts that do not match, a loop in a tree or a cycle "
    "among dependencies).",
)
declare(
    "operations",
    "import_version_unsupported",
    InvalidInput,
    "The export is in a format version newer than this cw reads; upgrade cw to import it.",
)
declare(
    "operations",
    "import_clash",
    Conflict,
    "Ids or unique names of the export already exist in the database (details.clashes "
    "lists them); import with --as-new to give the records fresh ids.",
)
declare(
    "operations",
    "import_missing_reference",
    InvalidInput,
    "A record of the export requires a record that is in neither the file nor the database.",
)
declare(
    "operations",
    "import_refused",
    Conflict,
    "The database refused the import as a whole when committing it; nothing was written.",
)
