from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from cw_project.api import api

admin.site.site_header = "cw · control plane"
admin.site.site_title = "cw"
admin.site.index_title = "Initiatives, agents and reviews"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
