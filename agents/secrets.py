"""Secrets at rest: a text field stored Fernet-encrypted, and key rotation.

Keys come from ``settings.CW_SECRET_KEYS``: the first encrypts, every key is tried to
decrypt (``MultiFernet``), so a new key can be put first while old rows stay readable,
and ``rotate()`` re-encrypts a stored value with it (``AccountRepository.rotate_secrets``
does so for every row). The keys are read on first use, never at import time, and re-read
whenever the setting changes.
"""

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

#: Marks a stored value as a Fernet token, so clear values written before encryption
#: was introduced are still told apart (and rotated into tokens).
PREFIX = "fernet:"

SETTING = "CW_SECRET_KEYS"


class SecretKeyError(ImproperlyConfigured):
    """A stored secret cannot be decrypted, or the configured keys are unusable."""


@functools.cache
def _fernet() -> MultiFernet:
    keys = getattr(settings, SETTING, None)
    if isinstance(keys, str | bytes):
        # A single key given as a plain string would otherwise be split into characters.
        keys = [keys]
    if not keys:
        raise SecretKeyError(f"settings.{SETTING} is empty: at least one Fernet key is needed.")
    fernets = []
    for position, key in enumerate(keys):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            # The key itself is never echoed: it is a secret.
            raise SecretKeyError(
                f"settings.{SETTING}[{position}] is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; make one with Fernet.generate_key())."
            ) from None
    return MultiFernet(fernets)


@receiver(setting_changed)
def _reset_keys(*, setting: str, **kwargs) -> None:
    # override_settings and pytest-django's ``settings`` fixture send this signal.
    if setting == SETTING:
        _fernet.cache_clear()


def is_encrypted(value: str) -> bool:
    """Whether ``value`` is in the stored, encrypted form (``fernet:`` + token)."""
    return value.startswith(PREFIX)


def encrypt(value: str) -> str:
    """``fernet:`` + a token of ``value`` under the current (first) key.

    A value already in the encrypted form is returned unchanged, never encrypted twice.
    """
    if is_encrypted(value):
        return value
    return PREFIX + _fernet().encrypt(value.encode()).decode("ascii")


def decrypt(value: str) -> str:
    """The clear text of an encrypted value; a value not in encrypted form is returned as is.

    Raises ``SecretKeyError`` (an ``ImproperlyConfigured``) when no configured key opens
    the token.
    """
    if not is_encrypted(value):
        return value
    try:
        return _fernet().decrypt(value.removeprefix(PREFIX).encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError):
        raise _undecryptable() from None


def rotate(value: str) -> str:
    """``value`` re-encrypted under the current key (a clear value is simply encrypted)."""
    if not is_encrypted(value):
        return encrypt(value)
    try:
        token = _fernet().rotate(value.removeprefix(PREFIX).encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise _undecryptable() from None
    return PREFIX + token.decode("ascii")


def _undecryptable() -> SecretKeyError:
    return SecretKeyError(
        f"A stored secret cannot be decrypted with any key in settings.{SETTING}: the key "
        f"it was encrypted with is missing from {SETTING}, or the value is corrupt."
    )


class EncryptedTextField(models.TextField):
    """A text field stored as ``fernet:`` + a Fernet token; Python code sees clear text.

    Every write path encrypts (``save()``, ``QuerySet.update()``, ``bulk_create``), None
    stays NULL. Because each encryption is randomised, equality lookups on the clear
    text cannot match; only ``isnull`` is meaningful in a filter.
    """

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt(value)
