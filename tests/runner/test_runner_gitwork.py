"""``runner.gitwork`` against real git: a mirror, worktrees per run, publish, integrate."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import gitwork
from runner.gitwork import GitError, Mirror, Project

from .gitwork_helpers import commit_file, git, has_branch, make_origin, someone_pushes, tip

pytestmark = pytest.mark.processes


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return make_origin(tmp_path)


@pytest.fixture
def mirror(tmp_path: Path, origin: Path) -> Mirror:
    project = Project(id="p-1", name="app", url=str(origin), default_branch="main")
    made = Mirror.of(tmp_path / "ws", project)
    made.fetch()
    return made


def test_the_mirror_is_a_bare_fetch_of_origin(tmp_path: Path, origin: Path, mirror: Mirror) -> None:
    assert mirror.path == tmp_path / "ws" / "mirrors" / "p-1.git"
    assert git(mirror.path, "rev-parse", "--is-bare-repository") == "true"
    assert mirror.has("refs/remotes/origin/main")
    assert not mirror.has("refs/remotes/origin/feature")
    # A second fetch sees what arrived since, and a new URL is taken.
    pushed = someone_pushes(origin, tmp_path, "main", "NEWS", "news\n")
    mirror.fetch()
    assert git(mirror.path, "rev-parse", "refs/remotes/origin/main") == pushed


def test_a_mirror_without_a_project_says_so(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="no project"):
        Mirror(tmp_path / "x.git").fetch()


def test_a_run_from_main_is_fast_forwarded_into_a_new_initiative_branch(
    tmp_path: Path, origin: Path, mirror: Mirror
) -> None:
    worktree = tmp_path / "ws" / "worktrees" / "r1" / "worktree"
    start = mirror.add_worktree(worktree, "feature-run-r1", "feature")
    assert start == tip(origin, "main")
    assert git(worktree, "branch", "--show-current") == "feature-run-r1"
    done = commit_file(worktree, "a.txt", "a\n")

    gitwork.publish(mirror, worktree, "feature-run-r1")
    assert tip(origin, "feature-run-r1") == done
    assert mirror.reachable_from_origin(done)
    assert not has_branch(origin, "feature")

    assert gitwork.integrate(mirror, worktree, "feature") == "fast-forward"
    assert tip(origin, "feature") == done
    assert tip(origin, "main") == start  # the default branch is left alone
    assert gitwork.integrate(mirror, worktree, "feature") == "up-to-date"


def test_a_concurrent_change_is_merged(tmp_path: Path, origin: Path, mirror: Mirror) -> None:
    first = tmp_path / "ws" / "worktrees" / "r1" / "worktree"
    mirror.add_worktree(first, "feature-run-r1", "feature")
    commit_file(first, "a.txt", "a\n")
    assert gitwork.integrate(mirror, first, "feature") == "fast-forward"

    second = tmp_path / "ws" / "worktrees" / "r2" / "worktree"
    mirror.fetch()
    start = mirror.add_worktree(second, "feature-run-r2", "feature")
    assert start == tip(origin, "feature")  # from the initiative's branch, not main
    theirs = someone_pushes(origin, tmp_path, "feature", "b.txt", "theirs\n")
    ours = commit_file(second, "c.txt", "ours\n")

    assert gitwork.integrate(mirror, second, "feature") == "merged"
    merged = tip(origin, "feature")
    assert git(second, "rev-parse", "HEAD") == merged
    assert set(git(second, "rev-parse", "HEAD^1", "HEAD^2").split()) == {ours, theirs}
    assert git(second, "show", f"{merged}:b.txt") == "theirs"
    assert git(second, "show", f"{merged}:c.txt") == "ours"


def test_a_conflict_leaves_the_initiative_branch_alone(
    tmp_path: Path, origin: Path, mirror: Mirror
) -> None:
    first = tmp_path / "ws" / "worktrees" / "r1" / "worktree"
    mirror.add_worktree(first, "feature-run-r1", "feature")
    commit_file(first, "shared.txt", "base\n")
    assert gitwork.integrate(mirror, first, "feature") == "fast-forward"

    second = tmp_path / "ws" / "worktrees" / "r2" / "worktree"
    mirror.fetch()
    mirror.add_worktree(second, "feature-run-r2", "feature")
    theirs = someone_pushes(origin, tmp_path, "feature", "shared.txt", "theirs\n")
    ours = commit_file(second, "shared.txt", "ours\n")
    gitwork.publish(mirror, second, "feature-run-r2")

    assert gitwork.integrate(mirror, second, "feature") == "conflict"
    assert tip(origin, "feature") == theirs
    assert tip(origin, "feature-run-r2") == ours
    assert git(second, "rev-parse", "HEAD") == ours  # the merge was aborted
    assert not gitwork.is_dirty(second)
    assert not (Path(git(second, "rev-parse", "--git-dir")) / "MERGE_HEAD").exists()


def test_commit_leftovers(tmp_path: Path, mirror: Mirror) -> None:
    worktree = tmp_path / "ws" / "worktrees" / "r1" / "worktree"
    start = mirror.add_worktree(worktree, "cw-run-r1", "main")
    assert not gitwork.commit_leftovers(worktree, "r1")
    assert gitwork.head(worktree) == start
    (worktree / "new").mkdir()
    (worktree / "new" / "file.txt").write_text("untracked\n")
    (worktree / "README").write_text("changed\n")
    assert gitwork.is_dirty(worktree)
    assert gitwork.commit_leftovers(worktree, "r1")
    assert not gitwork.is_dirty(worktree)
    assert gitwork.head(worktree) != start
    assert git(worktree, "log", "-1", "--format=%s") == "cw-runner: what run r1 left uncommitted"
    assert git(worktree, "log", "-1", "--format=%an") == "cw-runner"
    assert git(worktree, "show", "HEAD:new/file.txt") == "untracked"


def test_reachable_from_origin(tmp_path: Path, mirror: Mirror) -> None:
    worktree = tmp_path / "ws" / "worktrees" / "r1" / "worktree"
    mirror.add_worktree(worktree, "cw-run-r1", "main")
    local = commit_file(worktree, "a.txt", "a\n")
    assert not mirror.reachable_from_origin(local)
    assert not mirror.reachable_from_origin("0" * 40)
    gitwork.publish(mirror, worktree, "cw-run-r1")
    assert mirror.reachable_from_origin(local)
    later = commit_file(worktree, "b.txt", "b\n")
    assert not mirror.reachable_from_origin(later)


def test_remove_worktree(tmp_path: Path, mirror: Mirror) -> None:
    worktree = tmp_path / "ws" / "worktrees" / "r1" / "worktree"
    mirror.add_worktree(worktree, "cw-run-r1", "main")
    assert str(worktree) in git(mirror.path, "worktree", "list")
    mirror.remove_worktree(worktree, "cw-run-r1")
    assert not worktree.exists()
    assert str(worktree) not in git(mirror.path, "worktree", "list")
    assert not mirror.has("refs/heads/cw-run-r1")


def test_neither_branch_on_origin(tmp_path: Path, origin: Path) -> None:
    project = Project(id="p-2", name="app", url=str(origin), default_branch="trunk")
    mirror = Mirror.of(tmp_path / "ws", project)
    mirror.fetch()
    with pytest.raises(GitError, match="neither feature nor trunk"):
        mirror.add_worktree(tmp_path / "wt", "feature-run-1", "feature")
