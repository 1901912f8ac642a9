from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        # Declares the agents' error codes in the catalogue (core.errors), and registers
        # the system check that the configured keys read the stored secrets.
        from agents import checks, errors  # noqa: F401
        from agents.run_tokens import check_run_token_scope
        from core.auth import register_run_token_scope

        # What a run's token may call (issue 22): core.auth asks agents.run_tokens.
        register_run_token_scope(check_run_token_scope)
