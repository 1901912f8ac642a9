"""Text cut short for a label, a list cell, a message or a picture, text made safe to
print on a terminal, and text made storable (a log's raw output, escaped rather than
refused): one rule each, everywhere."""

import re

#: What a cut text ends with.
ELLIPSIS = "…"


def shorten(text: str | None, limit: int) -> str:
    """``text`` on one line (its white space collapsed), cut to at most ``limit``
    characters, ending in an ellipsis when cut."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 0)].rstrip() + ELLIPSIS


#: What a terminal acts on rather than shows: the C0 controls (ESC among them) and DEL,
#: the C1 controls (U+009B is an 8-bit CSI), and the bidirectional marks, embeddings,
#: overrides and isolates, which reorder what follows them on the line.
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
#: The same, keeping the line feed and the tab of text that spans lines.
_CONTROLS_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
#: What JSON text still carries raw once ``json.dumps`` has escaped the C0 controls.
_CONTROLS_JSON_KEEPS = re.compile(f"[\x7f-\x9f{_BIDI_CONTROLS}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str, *, lines: bool = False) -> str:
    """``text`` as a terminal may print it: each character a terminal would act on (an
    escape sequence's ESC, a carriage return, a bell, a C1 control, a bidirectional
    override) written out as ``\\x1b``, ``\\x9b``, ``\\u202e``…, so a name or a log
    record shows what it holds instead of clearing the screen, moving the cursor or
    retitling the window. ``lines`` keeps line feeds and tabs (a log record's text)."""
    pattern = _CONTROLS_BUT_LINES if lines else _CONTROLS
    return pattern.sub(_escaped, text)


def json_terminal_safe(text: str) -> str:
    """JSON text (``json.dumps``'s, ``orjson``'s) with the controls they leave raw (DEL,
    C1, bidirectional) written as ``\\u`` escapes: the same JSON value, safe on a
    terminal."""
    return _CONTROLS_JSON_KEEPS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


#: The one character no database stores alike in text (PostgreSQL refuses it).
_NUL = "\x00"


def storable_text(text: str) -> str:
    """``text`` with what cannot be stored alike in every database written out as visible
    escapes, in the spelling of Python's ``backslashreplace``: NUL as the four
    characters ``\\x00``, a lone surrogate (which JSON's ``\\u`` escapes can spell) as
    ``\\udXXX``. Anything else is kept as it is, so text without either comes back
    unchanged (the same object). An escape reads like one the text held already: the
    rule favours keeping every line over telling the two apart."""
    if _NUL in text:
        text = text.replace(_NUL, "\\x00")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def decoded_text(data: bytes) -> str:
    """``data`` as UTF-8 text made ``storable_text``, every byte that is not UTF-8
    written as ``\\xNN`` (Python's ``backslashreplace``) instead of refused."""
    return storable_text(data.decode("utf-8", "backslashreplace"))
