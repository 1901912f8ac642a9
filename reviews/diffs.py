"""A unified diff read into files, hunks and lines, each line highlighted for people.

``parse`` reads what ``git diff`` prints (``--find-renames``, no colour) into
``FileDiff``s; ``highlight`` adds each line's HTML, highlighted by Pygments with the
lexer the file's name suggests (plain text when none does), escaped in every case. A
file is highlighted as two texts — its old side and its new side, hunk after hunk — so
a multi-line string or comment is coloured as the language reads it, and each line
takes its own spans (Pygments' HTML formatter closes them at every line end).

Highlighted texts are kept (``HIGHLIGHT_CACHE`` of them, least recently used out), so
a page read again — after each comment — pays for the diff and not for Pygments again.

A file with more changed lines than ``LARGE_FILE_LINES`` is summarised (its counts, no
lines) unless asked for by name; a binary file is always summarised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

#: Changed lines (added + removed) above which a file is summarised, not shown.
LARGE_FILE_LINES = 1500
#: Changed lines one page shows unasked in all; the files past it are summarised.
PAGE_LINES = 20_000
#: The most changed lines a file asked for by name shows.
SHOWN_FILE_LINES = 20_000
#: The longest line highlighted; longer ones are shown escaped, unhighlighted.
LONG_LINE = 2000
#: How many highlighted file sides the process keeps (two per file: old and new), of at
#: most ``CACHED_TEXT`` characters each (a longer one is highlighted every time).
HIGHLIGHT_CACHE = 256
CACHED_TEXT = 200_000

CONTEXT = "context"
ADDED = "added"
REMOVED = "removed"

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_FORMATTER = HtmlFormatter(nowrap=True, classprefix="hl-")


@dataclass
class DiffLine:
    kind: str  # CONTEXT, ADDED or REMOVED (ReviewLineType's values)
    old: int | None  # its number on the old side (None for an added line)
    new: int | None  # its number on the new side (None for a removed line)
    text: str
    html: SafeString = field(default_factory=lambda: mark_safe(""))

    @property
    def number(self) -> int:
        """The line a comment names: new side, or old side for a removed line."""
        number = self.old if self.kind == REMOVED else self.new
        assert number is not None
        return number

    @property
    def sign(self) -> str:
        return {ADDED: "+", REMOVED: "-"}.get(self.kind, " ")


@dataclass
class Hunk:
    header: str
    lines: list[DiffLine] = field(default_factory=list)


@dataclass
class FileDiff:
    path: str  # the new path (the old one for a deleted file)
    old_path: str | None = None  # set when renamed
    status: str = "modified"  # added, deleted, renamed, modified
    binary: bool = False
    hunks: list[Hunk] = field(default_factory=list)
    additions: int = 0
    deletions: int = 0
    large: bool = False  # summarised: too many changed lines to show unasked
    header_path: str = ""  # as ``diff --git`` names it, when it names one path twice

    @property
    def changed(self) -> int:
        return self.additions + self.deletions

    @property
    def showable(self) -> bool:
        """Whether asking for it by name shows it (see ``summarise_large``)."""
        return self.changed <= SHOWN_FILE_LINES

    def lines(self) -> list[DiffLine]:
        return [line for hunk in self.hunks for line in hunk.lines]

    def line_at(self, kind: str, number: int) -> DiffLine | None:
        """The line a comment at (``kind``, ``number``) is on, or None."""
        for hunk in self.hunks:
            for line in hunk.lines:
                if line.kind == kind and line.number == number:
                    return line
        return None

    def excerpt(self, kind: str, number: int, around: int = 3) -> str | None:
        """The lines of the hunk around (``kind``, ``number``), as a unified diff
        excerpt (its ``@@`` header, then up to ``around`` lines either side)."""
        for hunk in self.hunks:
            for index, line in enumerate(hunk.lines):
                if line.kind == kind and line.number == number:
                    shown = hunk.lines[max(0, index - around) : index + around + 1]
                    body = [f"{each.sign}{each.text}" for each in shown]
                    return "\n".join([hunk.header, *body])
        return None


_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(path: str) -> str:
    """A path as git prints it in a header: C-quoted (``"a/caf\\303\\251"``, octal bytes
    of UTF-8) when it has special characters."""
    if len(path) < 2 or path[0] != '"' or path[-1] != '"':
        return path
    raw = bytearray()
    inner, index = path[1:-1], 0
    while index < len(inner):
        char = inner[index]
        if char != "\\" or index + 1 == len(inner):
            raw += char.encode("utf-8")
            index += 1
        elif inner[index + 1 : index + 4].isdigit() and len(inner[index + 1 : index + 4]) == 3:
            raw.append(int(inner[index + 1 : index + 4], 8) & 0xFF)
            index += 4
        else:
            raw.append(_C_ESCAPES.get(inner[index + 1], ord(inner[index + 1]) & 0xFF))
            index += 2
    return raw.decode("utf-8", "replace")


def _strip_prefix(path: str) -> str:
    path = _unquote(path)
    return path[2:] if path[:2] in ("a/", "b/") else path


def parse(text: str) -> list[FileDiff]:
    """The files of a ``git diff`` output, in its order."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    hunk: Hunk | None = None
    old = new = 0
    for raw in text.split("\n"):
        if raw.startswith("diff --git "):
            current = FileDiff(path="")
            current.header_path = _header_path(raw[len("diff --git ") :])
            files.append(current)
            hunk = None
            continue
        if current is None:
            continue
        if hunk is None or not raw or raw[0] not in " +-\\":
            if raw.startswith("@@"):
                match = _HUNK.match(raw)
                if match:
                    old, new = int(match.group(1)), int(match.group(3))
                    hunk = Hunk(header=raw)
                    current.hunks.append(hunk)
                continue
            _read_header(current, raw)
            continue
        if raw.startswith("\\"):  # "\ No newline at end of file"
            continue
        sign, body = raw[0], raw[1:]
        if sign == "+":
            hunk.lines.append(DiffLine(ADDED, None, new, body))
            new += 1
            current.additions += 1
        elif sign == "-":
            hunk.lines.append(DiffLine(REMOVED, old, None, body))
            old += 1
            current.deletions += 1
        else:
            hunk.lines.append(DiffLine(CONTEXT, old, new, body))
            old += 1
            new += 1
    for each in files:  # an empty new file or a mode change has no ---/+++ lines
        each.path = each.path or each.header_path
    return [each for each in files if each.path]


def _header_path(rest: str) -> str:
    """The path of ``diff --git a/<path> b/<path>`` when both sides name the same one
    (the only case with no ``---``/``+++`` lines to read it from: an empty new or
    deleted file, a change of mode)."""
    if rest.startswith('"'):
        old, _, new = rest[1:].partition('" "')
        return _strip_prefix(f'"{new}') if old[2:] == new[2:-1] else ""
    if len(rest) % 2 == 0:
        return ""
    half = len(rest) // 2
    old, new = rest[:half], rest[half + 1 :]
    if old.startswith("a/") and new.startswith("b/") and old[2:] == new[2:]:
        return new[2:]
    return ""


def _read_header(current: FileDiff, raw: str) -> None:
    if raw.startswith("--- "):
        if raw[4:] != "/dev/null" and not current.path:
            current.path = _strip_prefix(raw[4:])
    elif raw.startswith("+++ "):
        if raw[4:] != "/dev/null":
            current.path = _strip_prefix(raw[4:])
    elif raw.startswith("new file mode"):
        current.status = "added"
    elif raw.startswith("deleted file mode"):
        current.status = "deleted"
    elif raw.startswith("rename from "):
        current.status = "renamed"
        current.old_path = _unquote(raw[len("rename from ") :])
    elif raw.startswith("rename to "):
        current.path = _unquote(raw[len("rename to ") :])
    elif raw.startswith("Binary files ") and raw.endswith(" differ"):
        current.binary = True
        names = raw[len("Binary files ") : -len(" differ")]
        old_name, _, new_name = names.partition(" and ")
        if not current.path and not current.header_path:  # a name with " and " in it
            chosen = new_name if new_name != "/dev/null" else old_name
            current.path = _strip_prefix(chosen)


def summarise_large(files: list[FileDiff], *, shown: frozenset[str] = frozenset()) -> None:
    """Mark the files too large to show unasked: over ``LARGE_FILE_LINES`` changed lines,
    or past the page's ``PAGE_LINES`` (in diff order). A path in ``shown`` is shown up to
    ``SHOWN_FILE_LINES`` changed lines; past that, never."""
    budget = PAGE_LINES
    for each in files:
        asked = each.path in shown and each.changed <= SHOWN_FILE_LINES
        each.large = not asked and (each.changed > LARGE_FILE_LINES or each.changed > budget)
        if not each.large:
            budget -= each.changed


def highlight(files: list[FileDiff]) -> None:
    """Give each shown line of ``files`` its highlighted, escaped HTML."""
    for each in files:
        if each.binary or each.large or not each.hunks:
            continue
        name = each.path.rsplit("/", 1)[-1]
        olds = [line for line in each.lines() if line.kind != ADDED]
        news = [line for line in each.lines() if line.kind != REMOVED]
        for side in (olds, news):  # an unchanged line ends as the new code reads it
            for line, html in zip(side, _highlighted(name, side), strict=True):
                line.html = html


def _highlighted(name: str, lines: list[DiffLine]) -> list[SafeString]:
    """One escaped HTML string per line of ``lines``, highlighted as one text."""
    if not lines:
        return []
    if any(len(line.text) > LONG_LINE for line in lines):
        return [mark_safe(escape(line.text)) for line in lines]  # noqa: S308 - escaped
    text = "\n".join(line.text for line in lines) + "\n"
    out = (_highlight_text if len(text) <= CACHED_TEXT else _highlight_text.__wrapped__)(name, text)
    # One more piece than lines (after the last line end), or a lexer that read a line
    # end otherwise (a lone carriage return): then plain text, never shifted lines.
    if len(out) != len(lines) + 1:
        return [mark_safe(escape(line.text)) for line in lines]  # noqa: S308 - escaped
    return [mark_safe(part) for part in out[: len(lines)]]  # noqa: S308 - Pygments escapes


@lru_cache(maxsize=HIGHLIGHT_CACHE)
def _highlight_text(name: str, text: str) -> tuple[str, ...]:
    """``text`` highlighted as the file ``name``'s language, split into lines.

    Kept for the next reading (a page is read again after every comment): Pygments'
    lexers cost about half a millisecond a line, the lookup nothing."""
    try:
        lexer = get_lexer_for_filename(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False, ensurenl=False)
    return tuple(pygments_highlight(text, lexer, _FORMATTER).split("\n"))


def stylesheet() -> str:
    """The CSS of the highlighting classes (light, with a dark variant)."""
    light = HtmlFormatter(classprefix="hl-", style="default").get_style_defs(".cw-diff")
    dark = HtmlFormatter(classprefix="hl-", style="monokai").get_style_defs(".cw-diff")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
