from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        # Declares the agents' error codes in the catalogue (core.errors), and registers
        # the system check that the configured keys read the stored secrets.
        from agents import checks, errors  # noqa: F401
