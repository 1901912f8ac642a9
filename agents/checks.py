"""System checks of the agents app: the configured keys read the stored secrets.

``check_secret_keys`` is deliberately *not* tagged ``database``: Django runs those only
for ``manage.py check --database``, never at ``runserver`` or ``migrate`` start-up, which
is exactly when a changed ``DJANGO_SECRET_KEY`` or ``CW_SECRET_KEYS`` must be caught. It
queries the database itself, defensively: before ``migrate`` (no accounts table) or with
the database out of reach it reports nothing, and the command goes on as it would have.
"""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import DatabaseError, InterfaceError, connections

from agents.secrets import SETTING, SecretKeyError, check_keys, find_undecryptable

#: How many accounts with a secret are tried: enough to catch a wrong key, cheap enough
#: to run at every start-up.
SAMPLE_SIZE = 20

HINT = (
    f"Put the key the secrets were encrypted with in {SETTING} (after a new key, if any) "
    "and run `manage.py rotate_secrets`; with the default configuration that key is "
    'derived from the previous DJANGO_SECRET_KEY. See the README, "Rotating the secret '
    'keys". A command can still run with --skip-checks (e.g. to set secrets again).'
)


@checks.register(checks.Tags.security, "secrets")
def check_secret_keys(
    *,
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """An error when ``CW_SECRET_KEYS`` is unusable (E002) or cannot decrypt a sample of
    the stored account secrets (E001). ``databases`` is ignored on purpose: the check
    must run without ``--database`` too (see the module docstring)."""
    from agents.models import Account

    if app_configs is not None and Account._meta.app_config not in app_configs:
        return []
    try:
        check_keys()
    except SecretKeyError as error:
        return [
            checks.Error(
                str(error),
                hint=f"{SETTING} is comma-separated Fernet keys, the first encrypting; "
                'see the README, "Rotating the secret keys".',
                obj=f"settings.{SETTING}",
                id="agents.E002",
            )
        ]
    manager = Account._base_manager
    try:
        connection = connections[manager.db]
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
        if Account._meta.db_table not in tables:
            return []  # Not migrated yet: nothing is stored.
        unreadable = find_undecryptable(manager.all(), limit=SAMPLE_SIZE)
    except (DatabaseError, InterfaceError):
        return []  # Out of reach: the command that needs the database will say so.
    if not unreadable:
        return []
    shown = ", ".join(str(pk) for pk in unreadable[:5])
    return [
        checks.Error(
            f"The stored secrets of {len(unreadable)} of the accounts sampled ({shown}"
            f"{', …' if len(unreadable) > 5 else ''}) cannot be decrypted with the keys in "
            f"settings.{SETTING}: every claim of them would be refused "
            "(account_secret_unreadable).",
            hint=HINT,
            obj=f"settings.{SETTING}",
            id="agents.E001",
        )
    ]
