from django.contrib import admin

from core.models import (
    Initiative,
    InitiativeProject,
    Page,
    Phase,
    PhaseDependency,
    Project,
    Task,
    TaskDependency,
)

for model in (
    Initiative,
    Phase,
    PhaseDependency,
    Task,
    TaskDependency,
    Page,
    Project,
    InitiativeProject,
):
    admin.site.register(model)
