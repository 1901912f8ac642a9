"""A phase's diff: cw's mirrors (``core.mirrors``), the diff read into files and lines
(``reviews.diffs``), its range from the runs' commits or the initiative's branch
(``reviews.services.phase_diff``), and what a comment keeps of it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core import mirrors
from core import services as core_services
from core.errors import Conflict
from core.models import Event
from reviews import diffs, services
from reviews.diffs import ADDED, CONTEXT, REMOVED
from tests import factories as f
from tests.reviews.git_project import git_project
from tests.runner.gitwork_helpers import git

pytestmark = pytest.mark.django_db

DIFF = """\
diff --git a/app.py b/app.py
index 1111111..2222222 100644
--- a/app.py
+++ b/app.py
@@ -1,4 +1,4 @@ def main():
 import os
-x = 1
+x = 2
 y = 3
 z = 4
@@ -10,2 +10,3 @@
 a
+b
 c
\\ No newline at end of file
diff --git a/old name.txt b/new name.txt
similarity 90%
rename from old name.txt
rename to new name.txt
index 3333333..4444444 100644
--- a/old name.txt
+++ b/new name.txt
@@ -1 +1 @@
-hello
+hello!
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..5555555
Binary files /dev/null and b/logo.png differ
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index 6666666..0000000
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/pkg/__init__.py b/pkg/__init__.py
new file mode 100644
index 0000000..e69de29
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
diff --git "a/caf\\303\\251.txt" "b/caf\\303\\251.txt"
new file mode 100644
--- /dev/null
+++ "b/caf\\303\\251.txt"
@@ -0,0 +1 @@
+au lait
"""


def test_parse_reads_files_hunks_and_both_sides_numbers():
    files = diffs.parse(DIFF)
    assert [(d.path, d.status, d.additions, d.deletions, d.binary) for d in files] == [
        ("app.py", "modified", 2, 1, False),
        ("new name.txt", "renamed", 1, 1, False),
        ("logo.png", "added", 0, 0, True),
        ("gone.txt", "deleted", 0, 1, False),
        ("pkg/__init__.py", "added", 0, 0, False),
        ("run.sh", "modified", 0, 0, False),
        ("café.txt", "added", 1, 0, False),
    ]
    app = files[0]
    assert [h.header for h in app.hunks] == ["@@ -1,4 +1,4 @@ def main():", "@@ -10,2 +10,3 @@"]
    assert [(line.kind, line.old, line.new, line.text) for line in app.hunks[0].lines] == [
        (CONTEXT, 1, 1, "import os"),
        (REMOVED, 2, None, "x = 1"),
        (ADDED, None, 2, "x = 2"),
        (CONTEXT, 3, 3, "y = 3"),
        (CONTEXT, 4, 4, "z = 4"),
    ]
    assert [(line.kind, line.number) for line in app.hunks[1].lines] == [
        (CONTEXT, 10),
        (ADDED, 11),
        (CONTEXT, 12),
    ]
    assert files[1].old_path == "old name.txt"
    assert app.line_at(REMOVED, 2).text == "x = 1"
    assert app.line_at(ADDED, 3) is None
    assert app.excerpt(ADDED, 2, around=1) == "@@ -1,4 +1,4 @@ def main():\n-x = 1\n+x = 2\n y = 3"


def test_highlighting_escapes_and_keeps_one_line_per_line():
    files = diffs.parse(
        "diff --git a/t.py b/t.py\n--- a/t.py\n+++ b/t.py\n@@ -1,3 +1,4 @@\n"
        ' s = """first\n-<script>alert(1)</script>\n+<b>bold</b> & more\n+last"""\n'
        " x = 1\n"
    )
    diffs.highlight(files)
    lines = files[0].lines()
    assert len(lines) == 5
    html = [line.html for line in lines]
    assert all("<script>" not in each and "<b>" not in each for each in html)
    assert "&lt;script&gt;" in html[1]
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html[2]
    # The docstring is coloured as a string on every line it spans, each span closed.
    assert all('class="hl-s' in each for each in html[:4])
    assert all(each.count("<span") == each.count("</span>") for each in html)
    assert '<span class="hl-n">x</span>' in html[4]


def test_large_files_are_summarised_unless_asked_for():
    big = "".join(f"+line {n}\n" for n in range(diffs.LARGE_FILE_LINES + 1))
    text = f"diff --git a/big.txt b/big.txt\n--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1 @@\n{big}"
    files = diffs.parse(text)
    diffs.summarise_large(files)
    diffs.highlight(files)
    assert files[0].large and files[0].lines()[0].html == ""
    diffs.summarise_large(files, shown=frozenset({"big.txt"}))
    assert not files[0].large


@pytest.mark.processes
def test_fetch_makes_the_mirror_and_records_the_fetch(tmp_path):
    repo = git_project(tmp_path)
    assert not mirrors.exists(repo.project.pk)
    core_services.project_fetch(project_id=repo.project.pk)
    assert mirrors.commit_of(repo.project.pk, "main") is not None
    repo.project.refresh_from_db()
    assert repo.project.last_fetched_at is not None
    assert Event.objects.filter(kind="project.fetched", subject_id=repo.project.pk).count() == 1
    # A new commit reaches the mirror on the next fetch; a deleted branch is pruned.
    repo.checkout("topic", new=True)
    sha = repo.commit({"a.txt": "a\n"})
    repo.push("topic")
    core_services.project_fetch(project_id=repo.project.pk)
    assert mirrors.commit_of(repo.project.pk, "topic") == sha


@pytest.mark.processes
def test_a_fetch_that_fails_says_why_and_records_nothing(tmp_path):
    project = f.ProjectFactory(url=f"file://{tmp_path}/no-such-repo.git")
    with pytest.raises(Conflict) as refused:
        core_services.project_fetch(project_id=project.pk)
    assert refused.value.code == "project_fetch_failed"
    assert "no-such-repo" in refused.value.message
    project.refresh_from_db()
    assert project.last_fetched_at is None
    assert not Event.objects.filter(kind="project.fetched").exists()


@pytest.mark.processes
def test_without_runs_the_diff_is_the_branch_against_the_default_branch(tmp_path):
    repo = git_project(tmp_path)
    phase = f.PhaseFactory(initiative=repo.initiative)
    repo.commit({"main-only.txt": "later on main\n"})
    repo.push("main")
    repo.checkout("HEAD~1")
    repo.checkout(repo.initiative.branch, new=True)
    repo.commit({"README": "hello\nworld\n", "src/new.py": "def f():\n    return 1\n"})
    repo.push(repo.initiative.branch)

    before = services.phase_diff(phase_id=phase.pk)
    assert before.projects[0].problem.startswith("cw has no copy of this repository yet")

    core_services.project_fetch(project_id=repo.project.pk)
    found = services.phase_diff(phase_id=phase.pk).projects[0]
    assert found.problem is None and found.source == "branch"
    # From the merge base: main's later commit is not part of the phase's work.
    assert [(d.path, d.additions, d.deletions) for d in found.files] == [
        ("README", 1, 0),
        ("src/new.py", 2, 0),
    ]
    assert 'class="hl-k' in found.file("src/new.py").lines()[0].html


@pytest.mark.processes
def test_with_runs_the_diff_goes_from_the_first_start_to_the_last_end(tmp_path):
    repo = git_project(tmp_path)
    phase = f.PhaseFactory(initiative=repo.initiative)
    start = repo.commit({"a.txt": "one\n"}, "before the phase")
    first = repo.commit({"a.txt": "one\ntwo\n"}, "first run")
    second = repo.commit({"b.txt": "bee\n"}, "second run")
    repo.commit({"c.txt": "after the phase\n"}, "another phase")
    repo.push("main")
    for sha_start, sha_end in ((start, first), (first, second)):
        run = f.RunFactory(
            task=f.TaskFactory(phase=phase), outcome="succeeded", ended_at=timezone.now()
        )
        f.RunCommitFactory(
            run=run, project=repo.project, start_commit=sha_start, end_commit=sha_end
        )
    # An unrelated phase's run is not part of it.
    f.RunCommitFactory(project=repo.project, start_commit=start, end_commit=second)

    core_services.project_fetch(project_id=repo.project.pk)
    found = services.phase_diff(phase_id=phase.pk).projects[0]
    assert (found.source, found.base, found.head) == ("runs", start, second)
    assert [(d.path, d.additions) for d in found.files] == [("a.txt", 1), ("b.txt", 1)]


@pytest.mark.processes
def test_a_commit_the_mirror_lacks_asks_for_a_fetch(tmp_path):
    repo = git_project(tmp_path)
    phase = f.PhaseFactory(initiative=repo.initiative)
    core_services.project_fetch(project_id=repo.project.pk)
    sha = repo.commit({"late.txt": "pushed after the fetch\n"})
    repo.push("main")
    run = f.RunFactory(
        task=f.TaskFactory(phase=phase), outcome="succeeded", ended_at=timezone.now()
    )
    f.RunCommitFactory(run=run, project=repo.project, start_commit=sha, end_commit=sha)
    found = services.phase_diff(phase_id=phase.pk).projects[0]
    assert found.problem.startswith(f"The mirror lacks commit {sha[:12]}")
    core_services.project_fetch(project_id=repo.project.pk)
    assert services.phase_diff(phase_id=phase.pk).projects[0].problem is None


@pytest.mark.processes
def test_a_comment_keeps_its_line_and_hunk_and_knows_when_it_is_outdated(tmp_path):
    repo = git_project(tmp_path)
    phase = f.PhaseFactory(initiative=repo.initiative)
    repo.checkout(repo.initiative.branch, new=True)
    repo.commit({"app.py": "a = 1\nb = 2\nc = 3\n"})
    repo.push(repo.initiative.branch)
    core_services.project_fetch(project_id=repo.project.pk)

    context = services.line_context(
        phase_id=phase.pk, project_id=None, file_path="app.py", line_type=ADDED, line_number=2
    )
    assert context == {
        "project_id": repo.project.pk,
        "line_text": "b = 2",
        "hunk": "@@ -0,0 +1,3 @@\n+a = 1\n+b = 2\n+c = 3",
    }
    assert (
        services.line_context(
            phase_id=phase.pk,
            project_id=None,
            file_path="app.py",
            line_type=REMOVED,
            line_number=2,
        )
        == {}
    )
    comment = services.review_comment_create(
        phase_id=phase.pk, file_path="app.py", line_number=2, line_type=ADDED, body="Hm", **context
    )
    diff = services.phase_diff(phase_id=phase.pk)
    assert not services.is_outdated(comment, diff)

    repo.commit({"app.py": "a = 1\nb = 20\nc = 3\n"})
    repo.push(repo.initiative.branch)
    core_services.project_fetch(project_id=repo.project.pk)
    assert services.is_outdated(comment, services.phase_diff(phase_id=phase.pk))


def test_quoted_paths_read_as_git_wrote_them():
    text = (
        'diff --git "a/na\\303\\257ve \\"q\\".txt" "b/na\\303\\257ve \\"q\\".txt"\n'
        '--- "a/na\\303\\257ve \\"q\\".txt"\n+++ "b/na\\303\\257ve \\"q\\".txt"\n'
        "@@ -1 +1 @@\n-a\n+b\n"
        'diff --git "a/tab\\there" "b/tab\\there"\n--- "a/tab\\there"\n+++ "b/tab\\there"\n'
        "@@ -1 +1 @@\n-a\n+b\n"
        'diff --git "a/na\xefve" "b/na\xefve"\n--- "a/na\xefve"\n+++ "b/na\xefve"\n'
        "@@ -1 +1 @@\n-a\n+b\n"
    )
    assert [d.path for d in diffs.parse(text)] == ['naïve "q".txt', "tab\there", "naïve"]


def test_a_binary_file_with_and_in_its_name_keeps_its_name():
    text = (
        "diff --git a/x and y.png b/x and y.png\nindex 1..2 100644\n"
        "Binary files a/x and y.png and b/x and y.png differ\n"
    )
    assert [(d.path, d.binary) for d in diffs.parse(text)] == [("x and y.png", True)]


def test_a_carriage_return_never_shifts_the_highlighted_lines():
    files = diffs.parse(
        "diff --git a/t.py b/t.py\n--- a/t.py\n+++ b/t.py\n@@ -1,3 +1,3 @@\n a\rb\n-old\n+new\n c\n"
    )
    diffs.highlight(files)
    assert [(line.kind, line.html) for line in files[0].lines()] == [
        (CONTEXT, "a\rb"),
        (REMOVED, "old"),
        (ADDED, "new"),
        (CONTEXT, "c"),
    ]


def test_past_the_pages_budget_files_are_summarised(monkeypatch):
    monkeypatch.setattr(diffs, "PAGE_LINES", 3)
    text = "".join(
        f"diff --git a/f{n} b/f{n}\n--- /dev/null\n+++ b/f{n}\n@@ -0,0 +1,2 @@\n+1\n+2\n"
        for n in range(3)
    )
    files = diffs.parse(text)
    diffs.summarise_large(files)
    assert [f.large for f in files] == [False, True, True]
    diffs.summarise_large(files, shown=frozenset({"f2"}))
    assert [f.large for f in files] == [False, True, False]
    monkeypatch.setattr(diffs, "SHOWN_FILE_LINES", 1)
    diffs.summarise_large(files, shown=frozenset({"f1"}))
    assert files[1].large and not files[1].showable


def test_a_password_in_a_url_is_never_shown():
    assert mirrors.shown_url("https://bot:s3cret@git.example.com:8443/a.git") == (
        "https://bot:***@git.example.com:8443/a.git"
    )
    assert mirrors.shown_url("git@example.com:team/a.git") == "git@example.com:team/a.git"


@pytest.mark.processes
def test_a_fetch_under_way_stands_for_a_second_one(tmp_path):
    repo = git_project(tmp_path)
    with mirrors._fetching(repo.project.pk) as mine:
        assert mine
        assert mirrors.fetch(repo.project) is False  # at once, without waiting
        core_services.project_fetch(project_id=repo.project.pk)
    assert not Event.objects.filter(kind="project.fetched").exists()
    assert mirrors.fetch(repo.project) is True


@pytest.mark.processes
def test_a_half_made_mirror_is_put_right_by_the_next_fetch(tmp_path):
    repo = git_project(tmp_path)
    path = mirrors.path_of(repo.project.pk)
    path.mkdir(parents=True)
    git(path, "init", "-q", "--bare")  # a crash before its remote was set
    core_services.project_fetch(project_id=repo.project.pk)
    assert mirrors.commit_of(repo.project.pk, "main") is not None


@pytest.mark.processes
def test_text_that_is_not_utf8_is_shown_and_commented_on(tmp_path, admin_client):
    repo = git_project(tmp_path)
    phase = f.PhaseFactory(initiative=repo.initiative)
    repo.checkout(repo.initiative.branch, new=True)
    repo.commit({"latin1.txt": b"caf\xe9\n"})
    repo.push(repo.initiative.branch)
    core_services.project_fetch(project_id=repo.project.pk)
    found = services.phase_diff(phase_id=phase.pk).projects[0]
    assert found.file("latin1.txt").lines()[0].text == "caf\ufffd"
    context = services.line_context(
        phase_id=phase.pk, project_id=None, file_path="latin1.txt", line_type=ADDED, line_number=1
    )
    services.review_comment_create(
        phase_id=phase.pk,
        file_path="latin1.txt",
        line_number=1,
        line_type=ADDED,
        body="?",
        **context,
    )
    page = admin_client.get(f"/admin/core/phase/{phase.pk}/review/")
    assert page.status_code == 200 and "caf\ufffd" in page.content.decode()


@pytest.mark.processes
def test_a_diff_past_its_byte_limit_shows_its_first_files_and_says_so(tmp_path, monkeypatch):
    repo = git_project(tmp_path)
    phase = f.PhaseFactory(initiative=repo.initiative)
    repo.checkout(repo.initiative.branch, new=True)
    repo.commit({f"f{n}.txt": "x\n" * 50 for n in range(4)})
    repo.push(repo.initiative.branch)
    core_services.project_fetch(project_id=repo.project.pk)
    monkeypatch.setattr(mirrors, "DIFF_MAX_BYTES", 500)
    found = services.phase_diff(phase_id=phase.pk).projects[0]
    assert 0 < len(found.files) < 4
    assert all(each.additions == 50 for each in found.files)  # no file cut short
    assert found.note.startswith("The diff is larger than")
