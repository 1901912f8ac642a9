"""An initiative as one versioned JSON document, and back (``cw_export`` / ``cw_import``).

The document::

    {"format": "cw.initiative", "version": 1, "exported_at": "…Z",
     "initiative_id": "…", "with_logs": true, "counts": {"tasks": 1000, …},
     "tables": {"projects": [{…}, …], "initiatives": [{…}], "phases": […], …}}

``tables`` holds, under each table's name, its rows as they are stored: every column by
its attribute name (``phase_id``, not ``phase``), times in RFC 3339 with microseconds,
JSON columns as JSON. One row per line, so a file can be read, grepped and diffed.

**What an initiative takes with it**: its phases and their dependencies, its tasks
(those of its phases too) and their dependencies, its pages, the projects it links and
the links, its agents (those of its tasks, and any agent one of its proposals,
conversations or chat sessions names), their messages and log chunks (with
``with_logs``), its proposals, change sets with their entries, review comments on its
phases, conversations and chat sessions with their messages. Not exported: accounts
(they hold secrets: an agent's ``account_id`` is kept when that account exists where the
file is imported, and cleared otherwise), API tokens and the event feed.

**Importing** writes every record through its repository's ``restore`` (each row is
validated as any insert is; ids, times and states are kept) in one transaction: all or
nothing. Before writing it checks the document (format, version, table and column
names, one initiative), that every reference points to a record in the file or in the
database (an optional one that does not is cleared and counted; a required one is
refused), that the dependency graphs have no cycle, and that no id or unique name is
taken. Taken ids are refused with the list of clashes (``import_clash``), unless
``as_new``: then every record gets a fresh id, every reference follows it (soft ones
too: a proposal's or chat session's target, a message's agent, a log chunk's agent, a
change-set entry's record and the ids recorded in its before/after values), and taken
names (an agent's, an initiative's branch) get the first free ``-2``, ``-3``… suffix.

Projects are shared between initiatives, so they are matched rather than clashed: a
project with the same id, or else the same URL, is linked as it is; only a project the
database does not have is created. Log chunks keep their ids when all are free (always
so in an empty database); otherwise they are appended under new ids, in the same order.
"""

from operations.transfer.document import FORMAT, MODELS, TABLES, VERSION
from operations.transfer.exporting import export_initiative
from operations.transfer.importing import ImportResult, import_initiative, load_document

__all__ = [
    "FORMAT",
    "MODELS",
    "TABLES",
    "VERSION",
    "ImportResult",
    "export_initiative",
    "import_initiative",
    "load_document",
]
