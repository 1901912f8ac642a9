from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings


@pytest.fixture(autouse=True, scope="session")
def static_files_from_the_apps() -> Iterator[None]:
    """Serve static files from the apps, as runserver does, whatever DJANGO_DEBUG says.

    The suite never runs `collectstatic`: the manifest storage used without DEBUG would
    refuse every `{% static %}` it has no manifest entry for, and WhiteNoise would find
    no STATIC_ROOT.
    """
    with override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        WHITENOISE_USE_FINDERS=True,
        WHITENOISE_AUTOREFRESH=True,
    ):
        yield


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Hash passwords with MD5 for the test run only: production keeps Django's PBKDF2.

    PBKDF2 is slow on purpose (about 0.3 s a hash here), and the suite hashes hundreds of
    passwords (every ``admin_user``, every login); MD5 checks the same logins, lock-outs
    and password changes in microseconds. Processes the suite starts (``manage.py``,
    gunicorn) read the real settings and hash with PBKDF2.
    """
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"
