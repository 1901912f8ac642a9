from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        # Declares the agents' error codes in the catalogue (core.errors).
        from agents import errors  # noqa: F401
