"""The suite hashes passwords cheaply (tests/conftest.py); production keeps PBKDF2."""

import importlib

from django.conf import global_settings
from django.contrib.auth.hashers import get_hasher, identify_hasher, make_password


def test_the_suite_hashes_with_md5():
    assert get_hasher().algorithm == "md5"
    assert identify_hasher(make_password("a passphrase")).algorithm == "md5"


def test_the_project_settings_keep_djangos_slow_hashers():
    project = importlib.import_module("cw_project.settings")
    hashers = getattr(project, "PASSWORD_HASHERS", global_settings.PASSWORD_HASHERS)

    assert hashers[0] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    assert not any("MD5" in hasher for hasher in hashers)
