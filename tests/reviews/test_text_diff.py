"""``reviews.text_diff``: a long text's changes are found line by line, then word by
word inside the changed lines only."""

from reviews import text_diff


def test_a_long_page_marks_only_the_words_that_changed():
    before = "".join(f"Line {n}: the quick brown fox jumps.\n" for n in range(3000))
    after = before.replace("Line 1500: the quick brown", "Line 1500: the slow brown")
    shown = text_diff.text_diff_html(before, after)
    assert shown.count("<del>") == 1 and shown.count("<ins>") == 1
    assert "the <del>quick</del><ins>slow</ins> brown" in shown


def test_a_changed_run_larger_than_the_word_limit_shows_as_lines(monkeypatch):
    monkeypatch.setattr(text_diff, "WORD_DIFF_LIMIT", 5)
    shown = text_diff.text_diff_html("a b c d e f\nsame\n", "a b X d e f\nsame\n")
    assert shown == "<del>a b c d e f\n</del><ins>a b X d e f\n</ins>same\n"


def test_added_and_removed_lines_and_escaping():
    shown = text_diff.text_diff_html("<b>keep</b>\ngone\n", "<b>keep</b>\nnew & more\n")
    assert shown == "&lt;b&gt;keep&lt;/b&gt;\n<del>gone</del><ins>new &amp; more</ins>\n"
