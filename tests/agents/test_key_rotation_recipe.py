"""The README's key-rotation recipe works as written, from the default configuration.

The shell block under "Rotating the secret keys" is run by bash, line for line, against
a scratch database whose account secrets were stored with the default key (derived from
DJANGO_SECRET_KEY); then DJANGO_SECRET_KEY changes, as the recipe says it then may.
"""

import json
import re
import secrets
import shutil
import subprocess
import sys

import pytest
from django.conf import settings

from tests.serverprocess import manage, scratch_database

pytestmark = [pytest.mark.concurrency, pytest.mark.processes]

CANARY = "sk-rotation-canary-7f3a"
CREDENTIALS = json.dumps({"token": CANARY})
SHOW_SECRET = (
    "from agents.models import Account; "
    "print(Account.objects.get(email='ops@example.com').credentials)"
)


def _recipe() -> str:
    readme = (settings.BASE_DIR / "README.md").read_text()
    section = readme.split("### Rotating the secret keys", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the README's rotation section has no sh block"
    return block.group(1)


def test_the_readme_recipe_moves_the_secrets_off_the_derived_key(tmp_path):
    recipe = _recipe()
    assert "rotate_secrets" in recipe
    with scratch_database(tmp_path) as database:
        database.manage("migrate", "--no-input")
        database.manage(
            "shell",
            "-c",
            "from agents.services import account_create; "
            f"account_create(email='ops@example.com', credentials={CREDENTIALS!r})",
        )
        assert "CW_SECRET_KEYS" not in database.env  # the default configuration

        script = recipe.replace(".venv/bin/python", sys.executable)
        run = subprocess.run(  # noqa: S603  (bash running the README's own lines)
            [
                shutil.which("bash") or "/bin/bash",
                "-euo",
                "pipefail",
                "-c",
                script + '\nprintf "%s" "$NEW"',
            ],
            cwd=settings.BASE_DIR,
            env=database.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, run.stderr + run.stdout
        new_key = run.stdout.strip().splitlines()[-1]

        # Stored encrypted; the last step below shows the derived key no longer reads it.
        raw = database.query("SELECT credentials FROM accounts")[0][0]
        assert raw.startswith("fernet:") and CANARY not in raw

        # DJANGO_SECRET_KEY may now change freely.
        moved = database.env | {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "CW_SECRET_KEYS": new_key,
        }
        assert manage(moved, "check").returncode == 0
        shown = manage(moved, "shell", "-v", "0", "-c", SHOW_SECRET)
        assert shown.stdout.strip() == CREDENTIALS, shown.stderr

        # Without the recipe, the same change of DJANGO_SECRET_KEY is caught at start-up.
        unmoved = database.env | {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}
        refused = manage(unmoved, "check")
        assert refused.returncode != 0
        assert "agents.E001" in refused.stderr
