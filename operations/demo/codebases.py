"""What the demo's repositories hold: each project's default branch (a small codebase)
and the commits of the initiatives' branches, written by ``operations.demo.git_repos``.

The sign-in initiative's branch holds the work of its phase in review (the token model
in the storefront, the email in notifications), on which the demo's review comments sit
(``REVIEW_COMMENTS``); the billing initiative's branch holds the webhook endpoint and
the event mapping in payments. A branch an initiative has not worked on yet in a project
starts where the project's default branch is (``Codebase.branches`` with no commits).
"""

from dataclasses import dataclass, field

from reviews.models import ReviewLineType

#: The branches of the demo's initiatives (how a loaded demo is recognized, too).
BILLING_BRANCH = "cw/demo-billing-webhooks"
SIGN_IN_BRANCH = "cw/demo-magic-link-sign-in"

#: One commit: its message and the files it writes (path → whole content).
Commit = tuple[str, dict[str, str]]


@dataclass(frozen=True)
class Codebase:
    """A demo repository: ``name.git``, its default branch's files and, per branch made
    from it, its commits (in order)."""

    name: str
    default_branch: str
    files: dict[str, str]
    branches: dict[str, list[Commit]] = field(default_factory=dict)

    def content(self, path: str, *, branch: str | None = None) -> str:
        """The file at ``path`` on the default branch, or at the end of ``branch``."""
        found = self.files.get(path, "")
        for _message, changes in self.branches.get(branch or "", []):
            found = changes.get(path, found)
        return found


# --- storefront (Django) -----------------------------------------------------------------

STOREFRONT_README = """\
# Acme storefront

The shop customers see: catalogue, cart, checkout and their account.

    python manage.py runserver
    pytest -q
"""

STOREFRONT_USER = '''\
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A customer of the storefront; signs in with their email address."""

    email = models.EmailField(unique=True)
    marketing_opt_in = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    def __str__(self) -> str:
        return self.email
'''

STOREFRONT_MODELS_WITH_TOKENS = '''\
import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.utils import timezone


class User(AbstractUser):
    """A customer of the storefront; signs in with their email address."""

    email = models.EmailField(unique=True)
    marketing_opt_in = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    def __str__(self) -> str:
        return self.email


class MagicLinkToken(models.Model):
    """A single-use sign-in link's token: only its SHA-256 hash is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="magic_links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"])]

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User) -> str:
        """A new token for ``user``: the raw token is returned once, never stored."""
        raw = secrets.token_urlsafe(32)
        cls.objects.create(
            user=user,
            token_hash=cls.hash(raw),
            expires_at=timezone.now() + timedelta(minutes=15),
        )
        return raw

    @classmethod
    def redeem(cls, raw: str) -> User | None:
        """The user of an unused, unexpired token, now used; None for any other."""
        digest = cls.hash(raw)
        with transaction.atomic():
            token = cls.objects.select_for_update().filter(token_hash=digest).first()
            if token is None or token.token_hash != digest:
                return None
            if token.used_at is not None or token.expires_at <= timezone.now():
                return None
            token.used_at = timezone.now()
            token.save(update_fields=["used_at"])
        return token.user
'''

STOREFRONT_MIGRATION_0044 = """\
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0043_user_marketing_opt_in")]

    operations = [
        migrations.CreateModel(
            name="MagicLinkToken",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="magic_links",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["expires_at"], name="accounts_ma_expires_idx")]
            },
        ),
    ]
"""

STOREFRONT_VIEWS = '''\
from django.contrib.auth import views as auth_views


class SignInView(auth_views.LoginView):
    """Email and password; the email-only form replaces it behind magic_link_sign_in."""

    template_name = "accounts/sign_in.html"
    redirect_authenticated_user = True
'''

STOREFRONT = Codebase(
    name="storefront",
    default_branch="main",
    files={
        "README.md": STOREFRONT_README,
        "accounts/__init__.py": "",
        "accounts/models.py": STOREFRONT_USER,
        "accounts/views.py": STOREFRONT_VIEWS,
    },
    branches={
        SIGN_IN_BRANCH: [
            (
                "accounts: MagicLinkToken with a hashed single-use token",
                {
                    "accounts/models.py": STOREFRONT_MODELS_WITH_TOKENS,
                    "accounts/migrations/0044_magiclinktoken.py": STOREFRONT_MIGRATION_0044,
                },
            )
        ],
        BILLING_BRANCH: [],
    },
)

# --- notifications (the transactional mailer) -------------------------------------------

NOTIFICATIONS_README = """\
# Acme notifications

Renders and sends the transactional emails (orders, shipping, accounts) through the
mailer in `notifications/mailer.py`; templates live in `notifications/templates/email`.
"""

MAILER = '''\
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


class TransactionalMailer:
    def send(self, *, to, template, context, category):
        """Render ``template`` (its .html and .txt parts) with ``context``; send it."""
        message = EmailMultiAlternatives(
            subject=render_to_string(f"email/{template}.subject", context).strip(),
            body=render_to_string(f"email/{template}.txt", context),
            to=[to],
        )
        message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
        message.extra_headers["Auto-Submitted"] = "auto-generated"
        message.extra_headers["X-Mailer-Category"] = category
        return message.send()


mailer = TransactionalMailer()
'''

MAILER_WITH_HEADERS = '''\
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


class TransactionalMailer:
    def send(self, *, to, template, context, category, headers=None):
        """Render ``template`` (its .html and .txt parts) with ``context``; send it."""
        message = EmailMultiAlternatives(
            subject=render_to_string(f"email/{template}.subject", context).strip(),
            body=render_to_string(f"email/{template}.txt", context),
            to=[to],
        )
        message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
        message.extra_headers.update(headers or {})
        message.extra_headers["X-Mailer-Category"] = category
        return message.send()


mailer = TransactionalMailer()
'''

BASE_HTML = """\
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <title>{% block title %}Acme{% endblock %}</title>
</head>
<body style="margin:0;padding:0;font-family:-apple-system,'Segoe UI',sans-serif;">
  <table role="presentation" width="100%" cellpadding="0" cellspacing="0">
    <tr><td align="center" style="padding:24px;">
      <img src="https://static.acme.example/email/logo.png" width="120" height="32">
    </td></tr>
    <tr><td style="padding:0 24px;">{% block content %}{% endblock %}</td></tr>
    <tr><td style="padding:24px;color:#6b7280;font-size:12px;">
      Acme Corp, 1 Market Street, San Francisco
    </td></tr>
  </table>
</body>
</html>
"""

BASE_HTML_WITH_PREHEADER = BASE_HTML.replace(
    "  <table role=",
    '  <div style="display:none;max-height:0;overflow:hidden;">'
    "{% block preheader %}{% endblock %}</div>\n  <table role=",
)

BASE_TXT = """\
{% block content %}{% endblock %}
--
Acme Corp, 1 Market Street, San Francisco
"""

ORDER_SHIPPED_HTML = """\
{% extends "email/base.html" %}
{% block title %}Your order is on its way{% endblock %}
{% block content %}
<p>Order {{ order.number }} left our warehouse today.</p>
<p><a href="{{ tracking_url }}">Track the parcel</a></p>
{% endblock %}
"""

MAGIC_LINK_HTML = """\
{% extends "email/base.html" %}
{% block title %}Sign in to Acme{% endblock %}
{% block preheader %}Your sign-in link, valid for 15 minutes.{% endblock %}
{% block content %}
<h1 style="font-size:20px;">Sign in to Acme</h1>
<p>Someone ({{ browser }}, near {{ location }}) asked to sign in as {{ email }}.</p>
<p><a href="{{ link }}"
      style="background:#4f46e5;color:#fff;padding:12px 20px;text-decoration:none;">
  Sign in
</a></p>
<p>The link works once, for 15 minutes. Didn't ask? Ignore this email.</p>
{% endblock %}
"""

MAGIC_LINK_TXT = """\
Sign in to Acme

Someone ({{ browser }}, near {{ location }}) asked to sign in as {{ email }}.

{{ link }}

The link works once, for 15 minutes. Didn't ask? Ignore this email.
"""

SEND_MAGIC_LINK = '''\
from notifications.mailer import mailer


def send_magic_link(user, link, request_info):
    """Email ``link`` to ``user``, naming the browser and the approximate location
    (city, country) that asked for it, never the IP address."""
    return mailer.send(
        to=user.email,
        template="magic_link",
        context={
            "email": user.email,
            "link": link,
            "browser": request_info.browser,
            "location": f"{request_info.city}, {request_info.country}",
        },
        category="auth",
        headers={"X-Entity-Ref-ID": request_info.request_id},
    )
'''

NOTIFICATIONS = Codebase(
    name="notifications",
    default_branch="develop",
    files={
        "README.md": NOTIFICATIONS_README,
        "notifications/__init__.py": "",
        "notifications/mailer.py": MAILER,
        "notifications/templates/email/base.html": BASE_HTML,
        "notifications/templates/email/base.txt": BASE_TXT,
        "notifications/templates/email/order_shipped.html": ORDER_SHIPPED_HTML,
    },
    branches={
        SIGN_IN_BRANCH: [
            (
                "Magic-link email: HTML and plain-text parts through the mailer",
                {
                    "notifications/mailer.py": MAILER_WITH_HEADERS,
                    "notifications/magic_link.py": SEND_MAGIC_LINK,
                    "notifications/templates/email/base.html": BASE_HTML_WITH_PREHEADER,
                    "notifications/templates/email/magic_link.html": MAGIC_LINK_HTML,
                    "notifications/templates/email/magic_link.txt": MAGIC_LINK_TXT,
                },
            )
        ],
    },
)

# --- payments (FastAPI) ------------------------------------------------------------------

PAYMENTS_APP = '''\
"""The payments service's HTTP application."""

from fastapi import FastAPI

from payments.checkout import api as checkout
from payments.health import api as health
from payments.settings import settings

app = FastAPI(
    title="Acme payments",
    version=settings.version,
    docs_url=None if settings.production else "/docs",
)
app.include_router(checkout.router, prefix="/checkout")
app.include_router(health.router)
'''

PAYMENTS_APP_WITH_WEBHOOKS = (
    PAYMENTS_APP.replace(
        "from payments.settings import settings\n",
        "from payments.settings import settings\n"
        "from payments.webhooks import stripe as webhooks\n",
    )
    + "app.include_router(webhooks.router)\n"
)

BILLING_MODELS = '''\
"""A customer's subscription, as the payments service keeps it."""

from django.db import models


class Plan(models.TextChoices):
    STARTER = "starter"
    TEAM = "team"
    BUSINESS = "business"


class Interval(models.TextChoices):
    MONTH = "month"
    YEAR = "year"


# Derived from the events Stripe sends (billing/events.py), never set by hand.


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"


class Subscription(models.Model):
    customer_id = models.CharField(max_length=64, unique=True)
    stripe_id = models.CharField(max_length=64, unique=True)
    plan = models.CharField(max_length=16, choices=Plan.choices)
    interval = models.CharField(max_length=8, choices=Interval.choices)
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices)
    current_period_end = models.DateTimeField()
'''

BILLING_EVENTS = '''\
"""What each of Stripe's events does to a subscription."""

HANDLERS = {}


def apply(event):
    """Apply a stored Stripe event; unknown types are kept and skipped."""
    handler = HANDLERS.get(event["type"])
    if handler is not None:
        handler(event["data"]["object"])
'''

BILLING_EVENTS_MAPPED = '''\
"""What each of Stripe's events does to a subscription."""

from django.db import transaction

from payments.billing.models import Subscription, SubscriptionStatus


def _locked(stripe_id):
    return Subscription.objects.select_for_update().get(stripe_id=stripe_id)


def on_subscription_updated(subscription):
    with transaction.atomic():
        found = _locked(subscription["id"])
        found.status = SubscriptionStatus(subscription["status"])
        found.save(update_fields=["status"])


def on_invoice_paid(invoice):
    with transaction.atomic():
        found = _locked(invoice["subscription"])
        found.status = SubscriptionStatus.ACTIVE
        found.save(update_fields=["status"])


def on_payment_failed(invoice):
    with transaction.atomic():
        found = _locked(invoice["subscription"])
        found.status = SubscriptionStatus.PAST_DUE
        found.save(update_fields=["status"])


HANDLERS = {
    "customer.subscription.updated": on_subscription_updated,
    "invoice.paid": on_invoice_paid,
    "invoice.payment_failed": on_payment_failed,
}


def apply(event):
    """Apply a stored Stripe event; unknown types are kept and skipped."""
    handler = HANDLERS.get(event["type"])
    if handler is not None:
        handler(event["data"]["object"])
'''

STRIPE_WEBHOOK = """\
import stripe
from fastapi import APIRouter, Header, HTTPException, Request

from payments.settings import settings
from payments.webhooks.store import store_event

router = APIRouter()


@router.post("/webhooks/stripe")
async def stripe_webhook(request: Request, stripe_signature: str = Header(...)):
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(
            payload, stripe_signature, settings.stripe_webhook_secret, tolerance=300
        )
    except (ValueError, stripe.error.SignatureVerificationError):
        raise HTTPException(status_code=400, detail="invalid signature") from None
    await store_event(event)
    return {"received": True}
"""

STRIPE_EVENTS_MIGRATION = """\
-- 0031: every verified Stripe event, stored before it is processed.
CREATE TABLE stripe_events (
    id text PRIMARY KEY,            -- Stripe's event id: redeliveries are no-ops
    type text NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
CREATE INDEX stripe_events_processed_at_idx ON stripe_events (processed_at);
"""

PAYMENTS = Codebase(
    name="payments",
    default_branch="main",
    files={
        "README.md": "# Acme payments\n\nCheckout, subscriptions and invoices (FastAPI).\n",
        "payments/__init__.py": "",
        "payments/app.py": PAYMENTS_APP,
        "payments/billing/__init__.py": "",
        "payments/billing/models.py": BILLING_MODELS,
        "payments/billing/events.py": BILLING_EVENTS,
    },
    branches={
        BILLING_BRANCH: [
            (
                "Add POST /webhooks/stripe with signature verification",
                {
                    "payments/app.py": PAYMENTS_APP_WITH_WEBHOOKS,
                    "payments/webhooks/__init__.py": "",
                    "payments/webhooks/stripe.py": STRIPE_WEBHOOK,
                },
            ),
            (
                "Persist raw events idempotently in stripe_events",
                {"migrations/0031_stripe_events.sql": STRIPE_EVENTS_MIGRATION},
            ),
            (
                "Map invoice and subscription events to SubscriptionStatus",
                {"payments/billing/events.py": BILLING_EVENTS_MAPPED},
            ),
        ],
    },
)

#: The demo's repositories, by the key the builder names its projects with.
CODEBASES = {"storefront": STOREFRONT, "payments": PAYMENTS, "notifications": NOTIFICATIONS}


@dataclass(frozen=True)
class DemoComment:
    """A review comment of the sign-in phase: on the line reading ``line`` of ``path``
    in ``codebase`` (the branch's version, or the default branch's for a removed line)."""

    codebase: Codebase
    path: str
    line: str
    line_type: str
    body: str
    resolved: bool = False

    @property
    def line_number(self) -> int:
        """The line's number on its side of the diff (old for removed, new otherwise)."""
        branch = None if self.line_type == ReviewLineType.REMOVED else SIGN_IN_BRANCH
        lines = self.codebase.content(self.path, branch=branch).splitlines()
        return lines.index(self.line) + 1


REVIEW_COMMENTS = [
    DemoComment(
        STOREFRONT,
        "accounts/models.py",
        "            if token is None or token.token_hash != digest:",
        ReviewLineType.ADDED,
        "Compare with hmac.compare_digest, not !=: the lookup is by hash, but the check in "
        "redeem() should not leak timing either.",
    ),
    DemoComment(
        STOREFRONT,
        "accounts/models.py",
        "            expires_at=timezone.now() + timedelta(minutes=15),",
        ReviewLineType.ADDED,
        "expires_at should come from settings.MAGIC_LINK_TTL (15 minutes by default), not a "
        "literal timedelta.",
    ),
    DemoComment(
        NOTIFICATIONS,
        "notifications/mailer.py",
        '        message.extra_headers["Auto-Submitted"] = "auto-generated"',
        ReviewLineType.REMOVED,
        "Keep this line: without Auto-Submitted, out-of-office replies to every sign-in "
        "email land in the support inbox.",
    ),
    DemoComment(
        NOTIFICATIONS,
        "notifications/templates/email/base.html",
        '      <img src="https://static.acme.example/email/logo.png" width="120" height="32">',
        ReviewLineType.CONTEXT,
        "nit: the logo has no alt text.",
        resolved=True,
    ),
]
