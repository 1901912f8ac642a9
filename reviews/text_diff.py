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

#: Past this many tokens on either side, texts are compared line by line (difflib is
#: quadratic in the worst case; a page of a few thousand words stays word by word).
WORD_DIFF_LIMIT = 20_000


def text_diff_html(before: str | None, after: str | None) -> SafeString:
    """``before`` turned into ``after``, as escaped HTML with ``<del>`` and ``<ins>``."""
    old, new = _tokens(before or ""), _tokens(after or "")
    if max(len(old), len(new)) > WORD_DIFF_LIMIT:
        old, new = (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True)
    pieces: list[str] = []
    for operation, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if operation == "equal":
            pieces.append(escape("".join(old[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(format_html("<del>{}</del>", "".join(old[i1:i2])))
        if j2 > j1:
            pieces.append(format_html("<ins>{}</ins>", "".join(new[j1:j2])))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece is escaped above


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)
