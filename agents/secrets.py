"""Secrets at rest: a text field stored Fernet-encrypted, and key rotation.

Keys come from ``settings.CW_SECRET_KEYS``: the first encrypts, every key is tried to
decrypt (``MultiFernet``), so a new key can be put first while old rows stay readable,
and ``rotate()`` re-encrypts a stored value with it (``AccountRepository.rotate_secrets``
does so for every row). The keys are read on first use, never at import time, and re-read
whenever the setting changes.

Serialization (``dumpdata``) writes a secret in its encrypted form, never in clear, and
``loaddata`` stores that form as is. ``agents.checks`` samples the stored secrets at
start-up, so keys that cannot read them are reported before a claim needs them.
"""

import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.db.models import F, Q, QuerySet
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


def check_keys() -> None:
    """Raise ``SecretKeyError`` when ``CW_SECRET_KEYS`` is empty or holds an invalid key."""
    _fernet()


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


def can_decrypt(value: str) -> bool:
    """Whether the configured keys read ``value`` (a clear value always reads)."""
    try:
        decrypt(value)
    except SecretKeyError:
        return False
    return True


def find_undecryptable(queryset: QuerySet[Any], *, limit: int | None = None) -> list[Any]:
    """The pks of the rows of ``queryset`` holding a secret that no configured key
    decrypts (all of them when the keys themselves are unusable).

    Only rows with a secret are read, in pk order, at most ``limit`` of them: the stored
    tokens are read as plain text (nothing decrypted by the fields) and tried one by one.
    """
    names = [
        field.attname
        for field in queryset.model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
    if not names:
        return []
    raw = {
        f"raw_{name}": models.ExpressionWrapper(F(name), output_field=models.TextField())
        for name in names
    }
    has_secret = Q()
    for name in names:
        has_secret |= Q(**{f"{name}__isnull": False})
    rows = (queryset.filter(has_secret).annotate(**raw).order_by("pk").values_list("pk", *raw))[
        :limit
    ]
    return [
        pk
        for pk, *values in rows
        if not all(can_decrypt(value) for value in values if value is not None)
    ]


def _undecryptable() -> SecretKeyError:
    return SecretKeyError(
        f"A stored secret cannot be decrypted with any key in settings.{SETTING}: the key "
        f"it was encrypted with is missing from {SETTING}, or the value is corrupt."
    )


class EncryptedTextField(models.TextField):
    """A text field stored as ``fernet:`` + a Fernet token; Python code sees clear text.

    Every write path encrypts (``save()``, ``QuerySet.update()``, ``bulk_create``), None
    stays NULL. Because each encryption is randomised, equality lookups on the clear
    text cannot match; only ``isnull`` is meaningful in a filter. Serializers
    (``dumpdata``) get the encrypted form, and a value already encrypted is stored as is,
    so ``loaddata`` restores the same secret.
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

    def value_to_string(self, obj: models.Model) -> Any:
        # What Django's serializers write: the encrypted form, never the clear text. The
        # token is a fresh one under the current key (Fernet tokens are randomised), so
        # loading the dump stores it unchanged and it decrypts to the same secret.
        value = self.value_from_object(obj)
        if value is None:
            return None
        return encrypt(value)
