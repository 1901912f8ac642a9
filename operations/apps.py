from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Declares the operator features' error codes in the catalogue (core.errors).
        from operations import errors  # noqa: F401
