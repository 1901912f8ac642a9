"""Text cut short for a label, a list cell, a message or a picture: one rule everywhere."""

#: What a cut text ends with.
ELLIPSIS = "…"


def shorten(text: str | None, limit: int) -> str:
    """``text`` on one line (its white space collapsed), cut to at most ``limit``
    characters, ending in an ellipsis when cut."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 0)].rstrip() + ELLIPSIS
