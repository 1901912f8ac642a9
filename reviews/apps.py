from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Proposals and review"

    def ready(self) -> None:
        # Declares the reviews' error codes in the catalogue (core.errors).
        from reviews import errors  # noqa: F401
