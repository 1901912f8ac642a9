"""Make sure a superuser exists so a first-time user can log into the admin.

Credentials come from CW_ADMIN_USERNAME / CW_ADMIN_PASSWORD / CW_ADMIN_EMAIL when set.
Otherwise the user is ``admin`` with a generated password, printed once, when it is
first created; later runs only say that the user exists.
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the admin superuser if none exists, printing its credentials once."

    def handle(self, *args, **options):
        user_model = get_user_model()
        username = os.environ.get("CW_ADMIN_USERNAME", "admin")
        email = os.environ.get("CW_ADMIN_EMAIL", "admin@localhost")
        password = os.environ.get("CW_ADMIN_PASSWORD")
        if password is not None and not password.strip():
            raise CommandError(
                "CW_ADMIN_PASSWORD is set but empty: unset it to get a generated password, "
                "or give one."
            )

        if user_model.objects.filter(username=username).exists():
            self.stdout.write(
                f"Admin user '{username}' exists. Forgot its password? "
                f"Run: .venv/bin/python manage.py changepassword {username}"
            )
            return

        generated = password is None
        if generated:
            password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email=email, password=password)
        banner = "=" * 64
        self.stdout.write(banner)
        self.stdout.write(self.style.SUCCESS(f"Created admin user '{username}'."))
        if generated:
            self.stdout.write(f"  username: {username}")
            self.stdout.write(f"  password: {password}")
            self.stdout.write("  This password is shown only now. Change it in the admin, or")
            self.stdout.write("  set CW_ADMIN_USERNAME / CW_ADMIN_PASSWORD before `make run`.")
        else:
            self.stdout.write("  Password taken from CW_ADMIN_PASSWORD.")
        self.stdout.write(banner)
