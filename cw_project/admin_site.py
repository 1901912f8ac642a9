"""The cw admin site: Django's, with the dashboard (``operations.dashboard``) on its index
page, kept up to date by the event feed (``admin/cw/live.html``)."""

from typing import Any

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone

from core.admin_base import live_feed
from core.events import event_last_id
from operations.dashboard import DASHBOARD_LIMIT, build_dashboard
from operations.status import gather_status


class CwAdminSite(admin.AdminSite):
    """Django's admin site with cw's titles and the dashboard on its index."""

    site_header = "cw · control plane"
    site_title = "cw"
    index_title = "Initiatives, agents and reviews"

    def index(self, request, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        # Read before the dashboard, so a change it may not show is one the page hears.
        after = event_last_id()
        now = timezone.now()
        status = gather_status(limit=DASHBOARD_LIMIT, now=now)
        context = {
            "dashboard": build_dashboard(status, now=now),
            "live": live_feed(after=after),
            **(extra_context or {}),
        }
        return super().index(request, extra_context=context)
