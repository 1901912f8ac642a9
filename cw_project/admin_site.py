"""The cw admin site: Django's, with the dashboard (``operations.dashboard``) on its index
page."""

from typing import Any

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone

from operations.dashboard import DASHBOARD_LIMIT, build_dashboard
from operations.status import gather_status


class CwAdminSite(admin.AdminSite):
    """Django's admin site with cw's titles and the dashboard on its index."""

    site_header = "cw · control plane"
    site_title = "cw"
    index_title = "Initiatives, agents and reviews"

    def index(self, request, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        now = timezone.now()
        status = gather_status(limit=DASHBOARD_LIMIT, now=now)
        context = {"dashboard": build_dashboard(status, now=now), **(extra_context or {})}
        return super().index(request, extra_context=context)
