"""What the demo's pages say, as markdown (stored as Tiptap documents)."""

BILLING_OVERVIEW = """
# Stripe webhooks for subscription billing

Today a subscription's status is only updated when a customer visits the billing page,
so **failed payments go unnoticed for days**. This initiative moves the payments service
to Stripe's webhooks as the source of truth.

## Goals

- Verify and store every webhook event *before* processing it, so nothing is lost.
- Derive `SubscriptionStatus` from `invoice.*` and `customer.subscription.*` events.
- Run dunning ourselves: three failed attempts cancel the subscription.
- Give customers a billing portal to update their card and cancel.

## Out of scope

- Tax calculation (stays in Stripe Tax).
- Migrating one-off purchases.
"""

BILLING_ARCHITECTURE = """
# Architecture

Stripe → `POST /webhooks/stripe` (payments service) → `stripe_events` table → worker.

1. The endpoint verifies the `Stripe-Signature` header against the signing secret and
   answers `400` on a bad signature, `200` otherwise. It does no other work.
2. The raw event is inserted into `stripe_events` keyed by Stripe's event id, so a
   redelivered event is a no-op (`ON CONFLICT DO NOTHING`).
3. A worker processes events in `created` order per customer and updates
   `subscriptions.status`.

```python
event = stripe.Webhook.construct_event(payload, signature, settings.stripe_webhook_secret)
```

> Stripe retries a failed delivery for up to three days: the endpoint must be fast and
> idempotent, never both slow and strict.
"""

BILLING_DECISIONS = """
# Decisions

Short records of what we chose and why. Propose a new one as a page under this one.
"""

BILLING_ADR_1 = """
# ADR-001: Verify signatures before parsing

**Status:** accepted

We verify the signature on the raw request body before any JSON parsing. Parsing
first would let an unauthenticated caller reach our deserializer, and re-serializing
the body changes bytes the signature covers.

**Consequence:** the endpoint reads `await request.body()`, never `request.json()`.
"""

BILLING_ADR_2 = """
# ADR-002: Store raw events before processing

**Status:** accepted

Each event is stored as received, then processed by a worker. A bug in processing can
be fixed and the events replayed; an event dropped on the floor cannot.
"""

BILLING_RUNBOOK = """
# Runbook: replaying failed webhook events

1. Find the failed events: `SELECT id, type FROM stripe_events WHERE processed_at IS NULL`.
2. Fix the cause, deploy.
3. Replay: `python -m payments.jobs.replay_events --since 2h`.

Replaying is safe: processing an event twice gives the same subscription status.
"""

SIGN_IN_OVERVIEW = """
# Passwordless sign-in with magic links

Customers sign in by clicking a link we email them, instead of a password. Password
sign-in stays available for one release, then goes.

## Success criteria

- A link works **once**, for **15 minutes**, on any device.
- The sign-in form answers the same whether or not the email has an account.
- Support tickets about forgotten passwords drop by half.
"""

SIGN_IN_THREAT_MODEL = """
# Threat model

| Threat | Mitigation |
| --- | --- |
| Stolen link from a forwarded email | single use, 15 minute expiry |
| Account enumeration | identical response and timing for unknown emails |
| Email bombing a victim | rate limits per email and per IP |
| Token leak from the database | store only the SHA-256 of the token |

Open question: do we bind the link to the browser that asked for it? It blocks
phishing relays but breaks "asked on laptop, clicked on phone".
"""

SIGN_IN_EMAILS = """
# Email templates

The magic-link email has an HTML and a plain-text part. It says:

- which browser and approximate location asked for the link;
- that the link expires in 15 minutes;
- what to do if you did not ask for it (nothing: the link expires).

Templates live in `notifications/templates/email/magic_link.{html,txt}`.
"""

SIGN_IN_ROLLOUT = """
# Rollout plan

1. Internal accounts (feature flag `magic_link_sign_in`), one week.
2. 10% of customers, watching sign-in success rate and support tickets.
3. Everyone; password sign-in hidden behind "Use a password instead".
"""
