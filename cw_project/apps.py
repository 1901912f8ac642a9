"""The project's own app configurations."""

from django.contrib.admin.apps import AdminConfig


class CwAdminConfig(AdminConfig):
    """Django's admin, served by ``CwAdminSite`` (the dashboard on its index)."""

    default_site = "cw_project.admin_site.CwAdminSite"
