from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from cw_project.api import api
from cw_project.errors import API_PATH_PREFIX

#: A request Django refuses to read outside any API operation answers in the API's error
#: shape under /api/, Django's page elsewhere.
handler400 = "cw_project.errors.bad_request"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path(API_PATH_PREFIX.removeprefix("/"), api.urls),
]
