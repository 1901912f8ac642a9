"""What the demo's finished and running agents did in their sessions, step by step
(``stream_json.transcript`` turns them into log chunks)."""

from operations.demo.stream_json import Say, Tool


def endpoint_steps(cwd: str) -> list[Say | Tool]:
    """ivory-mink adds the webhook endpoint."""
    return [
        Say("I'll add the webhook endpoint. First, how does the service mount routers?"),
        Tool(
            "Grep",
            {"pattern": "include_router", "path": "payments", "output_mode": "content"},
            'payments/app.py:14:app.include_router(checkout.router, prefix="/checkout")\n'
            "payments/app.py:15:app.include_router(health.router)",
        ),
        Tool(
            "Write",
            {
                "file_path": f"{cwd}/payments/webhooks/stripe.py",
                "content": (
                    "import stripe\nfrom fastapi import APIRouter, Header, HTTPException, "
                    "Request\n\nrouter = APIRouter()\n\n\n@router.post('/webhooks/stripe')"
                    "\nasync def stripe_webhook(request: Request, stripe_signature: str = "
                    "Header(...)):\n    payload = await request.body()\n    try:\n"
                    "        event = stripe.Webhook.construct_event(payload, "
                    "stripe_signature, settings.stripe_webhook_secret)\n    except "
                    "stripe.error.SignatureVerificationError:\n        raise "
                    "HTTPException(status_code=400, detail='invalid signature')\n"
                    "    await store_event(event)\n    return {'received': True}\n"
                ),
            },
            f"File created successfully at: {cwd}/payments/webhooks/stripe.py",
        ),
        Tool(
            "Bash",
            {
                "command": "pytest -q tests/webhooks",
                "description": "Run the webhook endpoint tests",
            },
            "....                                                       [100%]\n4 passed in 0.62s",
        ),
        Say(
            "The endpoint verifies `Stripe-Signature` on the raw body before parsing "
            "and answers 400 on a bad signature. All 4 tests pass."
        ),
    ]


def mapping_steps(cwd: str) -> list[Say | Tool]:
    """scarlet-kestrel maps Stripe's events onto subscription statuses."""
    return [
        Say("Mapping Stripe's events onto SubscriptionStatus. Reading the enum first."),
        Tool(
            "Read",
            {"file_path": f"{cwd}/payments/billing/models.py", "offset": 20, "limit": 8},
            "    20\tclass SubscriptionStatus(models.TextChoices):\n"
            '    21\t    TRIALING = "trialing"\n    22\t    ACTIVE = "active"\n'
            '    23\t    PAST_DUE = "past_due"\n    24\t    CANCELED = "canceled"\n'
            '    25\t    UNPAID = "unpaid"',
        ),
        Tool(
            "Edit",
            {
                "file_path": f"{cwd}/payments/billing/events.py",
                "old_string": "HANDLERS = {}",
                "new_string": (
                    "HANDLERS = {\n"
                    '    "customer.subscription.updated": on_subscription_updated,\n'
                    '    "invoice.paid": on_invoice_paid,\n'
                    '    "invoice.payment_failed": on_payment_failed,\n}'
                ),
            },
            f"The file {cwd}/payments/billing/events.py has been updated.",
        ),
        Tool(
            "Bash",
            {"command": "pytest -q tests/billing", "description": "Run the billing tests"},
            "............                                               [100%]\n12 passed in 1.08s",
        ),
        Say("All event types are mapped and ordered per customer; 12 tests pass."),
    ]


def dunning_steps() -> list[Say | Tool]:
    """cobalt-magpie, still at work on dunning: its last test run failed."""
    return [
        Say("Starting on dunning. I need each invoice's attempt number."),
        Tool(
            "Grep",
            {"pattern": "attempt_count", "path": "payments", "output_mode": "content"},
            'payments/billing/events.py:88:        attempt_count=invoice["attempt_count"],',
        ),
        Tool(
            "TodoWrite",
            {
                "todos": [
                    {
                        "content": "Move to past_due on a failed attempt",
                        "status": "completed",
                        "activeForm": "Moving to past_due on a failed attempt",
                    },
                    {
                        "content": "Cancel on the third failed attempt",
                        "status": "in_progress",
                        "activeForm": "Cancelling on the third failed attempt",
                    },
                    {
                        "content": "Email the customer on cancellation",
                        "status": "pending",
                        "activeForm": "Emailing the customer on cancellation",
                    },
                ]
            },
            "Todos have been modified successfully. Ensure that you continue to use the "
            "todo list to track your progress.",
        ),
        Tool(
            "Bash",
            {
                "command": "pytest -q tests/billing/test_dunning.py",
                "description": "Run the dunning tests",
            },
            "F..                                                        [100%]\n"
            "FAILED tests/billing/test_dunning.py::test_third_failure_cancels - "
            "AssertionError: assert 'past_due' == 'canceled'\n1 failed, 2 passed in 0.71s",
            is_error=True,
        ),
        Say(
            "The third failure leaves the subscription past_due: the counter resets "
            "when invoice.updated arrives between attempts. Fixing the reset condition."
        ),
    ]


def email_steps(cwd: str) -> list[Say | Tool]:
    """copper-wren writes the magic-link email."""
    return [
        Say("Wiring the magic-link email into the notifications service's mailer."),
        Tool(
            "Read",
            {"file_path": f"{cwd}/notifications/mailer.py", "limit": 12},
            "     1\tclass TransactionalMailer:\n     2\t    def send(self, *, to, "
            "template, context, category):\n",
        ),
        Tool(
            "Write",
            {
                "file_path": f"{cwd}/notifications/templates/email/magic_link.txt",
                "content": (
                    "Sign in to Acme\n\nSomeone ({{ browser }}, near {{ location }}) "
                    "asked to sign in as {{ email }}.\n\n{{ link }}\n\nThe link works "
                    "once, for 15 minutes. Didn't ask? Ignore this email.\n"
                ),
            },
            f"File created successfully at: {cwd}/notifications/templates/email/magic_link.txt",
        ),
        Tool(
            "Bash",
            {"command": "pytest -q tests/test_magic_link_email.py"},
            "......                                                     [100%]\n6 passed in 0.44s",
        ),
        Say("The email goes out with both parts; 6 tests pass."),
    ]
