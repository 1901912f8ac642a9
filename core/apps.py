from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Planning"

    def ready(self) -> None:
        # Declares core's error codes and those every app shares (see core.errors).
        from core import errors  # noqa: F401
