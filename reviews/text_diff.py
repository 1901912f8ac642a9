"""Two versions of a text compared for a person: what goes is struck through in red
(``<del>``), what comes is green (``<ins>``), what stays is plain. Words, runs of
whitespace and punctuation are compared one by one, so a changed word in a long page
stands out; every piece of text is escaped."""

import re
from difflib import SequenceMatcher

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

# Words, runs of whitespace (line breaks included), and single other characters.
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)

#: The most tokens on either side of a changed run of lines compared word by word; a
#: larger run shows as its lines struck and added (difflib is quadratic in the worst case,
#: so words are compared only inside the lines that changed, never across a whole page).
WORD_DIFF_LIMIT = 2_000


def text_diff_html(before: str | None, after: str | None) -> SafeString:
    """``before`` turned into ``after``, as escaped HTML with ``<del>`` and ``<ins>``:
    compared line by line, then word by word inside each run of changed lines."""
    old = (before or "").splitlines(keepends=True)
    new = (after or "").splitlines(keepends=True)
    pieces: list[str] = []
    for operation, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if operation == "equal":
            pieces.append(escape("".join(old[i1:i2])))
        elif operation == "replace":
            pieces.append(_words("".join(old[i1:i2]), "".join(new[j1:j2])))
        else:
            pieces.append(_changed("".join(old[i1:i2]), "".join(new[j1:j2])))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece is escaped


def _words(before: str, after: str) -> str:
    """A run of changed lines compared word by word (lines, past ``WORD_DIFF_LIMIT``)."""
    old, new = _tokens(before), _tokens(after)
    if max(len(old), len(new)) > WORD_DIFF_LIMIT:
        return _changed(before, after)
    pieces: list[str] = []
    for operation, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if operation == "equal":
            pieces.append(escape("".join(old[i1:i2])))
        else:
            pieces.append(_changed("".join(old[i1:i2]), "".join(new[j1:j2])))
    return "".join(pieces)


def _changed(gone: str, come: str) -> str:
    return (format_html("<del>{}</del>", gone) if gone else "") + (
        format_html("<ins>{}</ins>", come) if come else ""
    )


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)
