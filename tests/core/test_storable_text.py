"""``core.text.storable_text`` and ``decoded_text``: a log's raw output made storable in
every database by escaping (Python's ``backslashreplace`` spelling), never refused."""

import pytest

from core.repositories import text_problem
from core.text import decoded_text, storable_text


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        (
            "Error: rate limit reached, retrying in 30s",
            "Error: rate limit reached, retrying in 30s",
        ),
        ('{"type":"assist', '{"type":"assist'),
        ("a\x00b\x00", "a\\x00b\\x00"),
        ("\ud800", "\\ud800"),
        ("caf\u00e9 \udfff \U0001f600", "caf\u00e9 \\udfff \U0001f600"),
        ("é\x00\ud83d", "é\\x00\\ud83d"),
    ],
)
def test_storable_text_escapes_nul_and_lone_surrogates_only(text, stored):
    assert storable_text(text) == stored
    assert text_problem(storable_text(text)) is None


def test_storable_text_keeps_text_it_need_not_change_as_it_is():
    text = "plain, \u00e9t\u00e9, \x1b[2J and a tab\t"
    assert storable_text(text) is text


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"caf\xc3\xa9", "caf\u00e9"),
        (b"caf\xe9", "caf\\xe9"),
        (b"cut \xe2\x82", "cut \\xe2\\x82"),
        (b"\xed\xa0\x80", "\\xed\\xa0\\x80"),  # a surrogate spelled in UTF-8 is not UTF-8
        (b"nul \x00 \xff", "nul \\x00 \\xff"),
    ],
)
def test_decoded_text_writes_bytes_that_are_not_utf8_as_escapes(data, text):
    assert decoded_text(data) == text
    assert text_problem(decoded_text(data)) is None
