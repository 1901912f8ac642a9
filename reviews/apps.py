from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Proposals and review"

    def ready(self) -> None:
        # Declares the reviews' error codes in the catalogue (core.errors).
        # Connects the receivers of core's signals (core.signals), e.g. a rework task's
        # completion resolving the comments handed to it.
        from reviews import (
            errors,  # noqa: F401
            services,  # noqa: F401
        )
