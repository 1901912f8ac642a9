"""A phase's review page: the diff of its work in each project, with people's comments
at their lines (``<phase>/review/`` in the admin).

Read from cw's mirrors (``reviews.services.phase_diff``): per project the range and
where it came from, the files with their counts (each collapsible; large files and
binaries summarised), and every line numbered on both sides and highlighted. Every line
takes a comment: its "+" asks the page for a form at that line (``?at=``, plain HTML,
no script needed; with scripts on, the form opens in place without a reload). Comments
sit under their lines with a button to resolve or reopen them; one whose line reads
otherwise since it was written is marked outdated (and one whose line is gone is listed
at the top of its file). The page's buttons — Approve, Request changes (it asks first),
Fetch — post to the phase's and the project's services and come back here.

The diff's rows are built here as HTML (every text escaped, the code as Pygments
escaped it): a 2,000-line diff is 2,000 rows, too many for a template's loops to stay
quick. The page reads a fixed number of rows from the database whatever the diff's
size (``bench/review_page.py`` measures it).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from core.admin_base import change_url
from core.errors import DomainError
from core.models import Phase, PhaseStatus
from reviews import diffs, services
from reviews.diffs import DiffLine, FileDiff
from reviews.models import ReviewComment, ReviewLineType
from reviews.repositories import ReviewCommentRepository
from reviews.services import PhaseDiff, ProjectDiff

review_comments = ReviewCommentRepository()


def review_url(phase: Phase | str) -> str:
    phase_id = phase if isinstance(phase, str) else phase.pk
    return reverse("admin:core_phase_review", args=[quote(phase_id)])


@dataclass
class FileView:
    """One file of a project's diff as the page shows it."""

    key: str  # "<project index>-<file index>": the file's anchor and form key
    diff: FileDiff
    comments: list[ReviewComment] = field(default_factory=list)  # on this file
    gone: list[ReviewComment] = field(default_factory=list)  # their line is not in it
    rows: SafeString = field(default_factory=lambda: mark_safe(""))


def review_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    phase = model_admin.get_object(request, object_id)
    if phase is None:
        return model_admin.record_gone(request, object_id)
    if not model_admin.has_view_or_change_permission(request, phase):
        raise PermissionDenied
    if request.method == "POST":
        if not model_admin.has_change_permission(request, phase):
            raise PermissionDenied
        return _post(model_admin, request, phase)
    shown = frozenset(request.GET.getlist("show"))
    diff = services.phase_diff(phase_id=phase.pk, show=shown)
    comments = review_comments.find_by_phase_id(phase.pk)
    at = _parse_at(request.GET.get("at", ""))
    projects = _project_views(request, diff, comments, at, shown)
    placed = {c.pk for view in projects for file in view["files"] for c in file.comments}
    elsewhere = [c for c in comments if c.pk not in placed]
    unresolved = [c for c in comments if not c.resolved]
    may_press = model_admin.has_button_permission(request, phase)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Review: {phase.name}",
        "subtitle": None,
        "phase": phase,
        "phase_url": change_url(phase),
        "in_review": phase.status == PhaseStatus.PENDING_REVIEW,
        "can_change": model_admin.has_change_permission(request, phase),
        "approve_url": model_admin.button_url(phase, "approve") if may_press else None,
        "request_changes_url": (
            model_admin.button_url(phase, "request-changes") if may_press else None
        ),
        "here": request.get_full_path(),
        "projects": projects,
        "elsewhere": elsewhere,
        "comments_total": len(comments),
        "unresolved_total": len(unresolved),
        "files_total": sum(len(p["files"]) for p in projects),
        "additions": sum(p["diff"].additions for p in projects),
        "deletions": sum(p["diff"].deletions for p in projects),
        "brief": services.render_brief(phase, unresolved),
        "highlight_css": mark_safe(diffs.stylesheet()),  # noqa: S308 - Pygments' own CSS
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/core/phase/review.html", context)


# --- reading the diff into the page ---------------------------------------------------------


@dataclass(frozen=True)
class At:
    key: str
    kind: str
    number: int


def _parse_at(text: str) -> At | None:
    """``?at=<file key>:<kind>:<number>``: where to open a comment form."""
    parts = text.split(":")
    if len(parts) != 3 or parts[1] not in ReviewLineType.values or not parts[2].isdigit():
        return None
    return At(parts[0], parts[1], int(parts[2]))


def _project_views(
    request: HttpRequest,
    diff: PhaseDiff,
    comments: list[ReviewComment],
    at: At | None,
    shown: frozenset[str],
) -> list[dict[str, Any]]:
    views = []
    by_path: dict[str, list[ReviewComment]] = defaultdict(list)
    for comment in comments:
        by_path[comment.file_path].append(comment)
    for index, project in enumerate(diff.projects):
        files = []
        for number, file in enumerate(project.files):
            mine = [
                c for c in by_path.get(file.path, ()) if c.project_id in (None, project.project.pk)
            ]
            view = FileView(f"{index}-{number}", file, comments=mine)
            view.rows = _rows(request, project, view, at)
            files.append(view)
        views.append(
            {
                "diff": project,
                "index": index,
                "files": files,
                "fetch_url": reverse(
                    "admin:core_project_do", args=[quote(project.project.pk), "fetch"]
                ),
                "project_url": change_url(project.project),
            }
        )
    return views


def _rows(
    request: HttpRequest,
    project: ProjectDiff,
    view: FileView,
    at: At | None,
) -> SafeString:
    """The file's table rows: hunk headers, lines, its comments under their lines, and
    the comment form where ``at`` asks for it. Records the comments whose line is not
    shown (``view.gone``)."""
    file, comments = view.diff, view.comments
    if file.binary or file.large:
        view.gone = list(comments)
        return mark_safe("")
    by_line: dict[tuple[str, int], list[ReviewComment]] = defaultdict(list)
    for comment in comments:
        by_line[(comment.line_type, comment.line_number)].append(comment)
    seen: set[tuple[str, int]] = set()
    out: list[str] = []
    for hunk in file.hunks:
        out.append(
            f'<tr class="cw-hunk"><td class="cw-num" colspan="2"></td>'
            f"<td>{escape(hunk.header)}</td></tr>"
        )
        for line in hunk.lines:
            out.append(_line_row(view.key, line))
            here = (line.kind, line.number)
            for comment in by_line.get(here, ()):
                seen.add(here)
                outdated = comment.line_text is not None and comment.line_text != line.text
                out.append(_comment_row(request, comment, outdated=outdated))
            if at is not None and at.key == view.key and (at.kind, at.number) == here:
                out.append(_form_row(request, project, view, line))
    view.gone = [c for c in comments if (c.line_type, c.line_number) not in seen]
    return mark_safe("".join(out))  # noqa: S308 - every text escaped above


_SIGNS: dict[str, str] = {ReviewLineType.ADDED: "+", ReviewLineType.REMOVED: "-"}


def _line_row(key: str, line: DiffLine) -> str:
    anchor = f"L{key}-{line.kind[0]}{line.number}"
    old = "" if line.old is None else line.old
    new = "" if line.new is None else line.new
    return (
        f'<tr class="cw-line cw-{line.kind}" id="{anchor}">'
        f'<td class="cw-num">{old}</td><td class="cw-num">{new}</td>'
        f'<td class="cw-code"><a class="cw-add" href="?at={key}:{line.kind}:{line.number}'
        f'#{anchor}" title="Comment on this line" data-at="{key}:{line.kind}:{line.number}">'
        f'+</a><span class="cw-sign">{_SIGNS.get(line.kind, " ")}</span>'
        f"<code>{line.html or escape(line.text)}</code></td></tr>"
    )


def _comment_row(request: HttpRequest, comment: ReviewComment, *, outdated: bool) -> str:
    html = render_to_string(
        "admin/core/phase/review_comment.html",
        {"comment": comment, "outdated": outdated, "here": request.get_full_path()},
        request=request,
    )
    return f'<tr class="cw-comment-row"><td colspan="2"></td><td>{html}</td></tr>'


def _form_row(request: HttpRequest, project: ProjectDiff, view: FileView, line: DiffLine) -> str:
    html = render_to_string(
        "admin/core/phase/review_form.html",
        {
            "project_id": project.project.pk,
            "file": view.diff,
            "line": line,
            "back": f"#L{view.key}-{line.kind[0]}{line.number}",
        },
        request=request,
    )
    return f'<tr class="cw-form-row"><td colspan="2"></td><td>{html}</td></tr>'


# --- what the page's forms post ---------------------------------------------------------


def _post(model_admin: Any, request: HttpRequest, phase: Phase) -> HttpResponse:
    action = request.POST.get("action")
    back = review_url(phase)
    try:
        if action == "comment":
            back += _comment(request, phase)
        elif action in ("resolve", "unresolve"):
            back += _resolve(request, phase, action == "resolve")
        else:
            messages.error(request, f"Unknown action {action!r} on the review page.")
    except DomainError as error:
        messages.error(request, error.message)
    return HttpResponseRedirect(back)


_ANCHOR = re.compile(r"#[A-Za-z0-9_-]{1,100}")


def _anchor(request: HttpRequest) -> str:
    """Where on the page to come back to: the form's ``back``, when it is an anchor."""
    back = request.POST.get("back") or ""
    return back if _ANCHOR.fullmatch(back) else ""


def _comment(request: HttpRequest, phase: Phase) -> str:
    post = request.POST
    body = (post.get("body") or "").strip()
    anchor = _anchor(request)
    if not body:
        messages.warning(request, "The comment was empty: write what should change.")
        return anchor
    try:
        line_number = int(post.get("line_number", ""))
    except ValueError:
        messages.error(request, "The comment names no line.")
        return ""
    project_id = post.get("project_id") or None
    file_path = post.get("file_path", "")
    line_type = post.get("line_type", "")
    context = services.line_context(
        phase_id=phase.pk,
        project_id=project_id,
        file_path=file_path,
        line_type=line_type,
        line_number=line_number,
    )
    services.review_comment_create(
        phase_id=phase.pk,
        file_path=file_path,
        line_type=line_type,
        line_number=line_number,
        body=body,
        author=request.user.get_username() or "you",
        project_id=context.get("project_id") or project_id,
        line_text=context.get("line_text"),
        hunk=context.get("hunk"),
    )
    messages.success(request, f"Comment added on {file_path}:{line_number}.")
    return anchor


def _resolve(request: HttpRequest, phase: Phase, resolved: bool) -> str:
    comment = review_comments.get(request.POST.get("comment", ""))
    if comment.phase_id != phase.pk:
        messages.error(request, "That comment is on another phase.")
        return ""
    if resolved:
        services.review_comment_resolve(comment_id=comment.pk)
        messages.success(request, f"Resolved “{comment}”.")
    else:
        services.review_comment_unresolve(comment_id=comment.pk)
        messages.success(request, f"Reopened “{comment}”.")
    return _anchor(request)
