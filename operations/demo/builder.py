"""Writes the demo through the services (see ``operations.demo``), counting what it made."""

import json
from datetime import timedelta
from typing import Any

from django.utils import timezone

from agents.models import Account, Agent, AgentMode, MessageType, ParticipantType
from agents.services import (
    account_create,
    account_mark_exhausted,
    agent_dismiss,
    agent_log_append,
    agent_mark_crashed,
    agent_mark_idle,
    agent_mark_running,
    agent_mark_stopped,
    agent_mark_waiting,
    agent_register,
    conversation_answer,
    conversation_ask,
    message_reply,
    message_send,
)
from agents.services.logs import NewLogChunk
from core.actors import Actor
from core.models import (
    ExecutionMode,
    Initiative,
    Page,
    Phase,
    Task,
    TaskCategory,
    TaskPriority,
    TaskType,
)
from core.services import (
    initiative_create,
    initiative_set_projects,
    page_create,
    page_get_or_create_root,
    page_update,
    phase_add_dependency,
    phase_approve_plan,
    phase_create,
    project_create,
    project_fetch,
    task_add_dependency,
    task_block,
    task_complete,
    task_create,
    task_start,
)
from core.tiptap import markdown_to_tiptap_json
from operations.demo import git_repos
from operations.demo.codebases import (
    BILLING_BRANCH,
    CODEBASES,
    REVIEW_COMMENTS,
    SIGN_IN_BRANCH,
)
from operations.demo.documents import (
    BILLING_ADR_1,
    BILLING_ADR_2,
    BILLING_ARCHITECTURE,
    BILLING_DECISIONS,
    BILLING_OVERVIEW,
    BILLING_RUNBOOK,
    SIGN_IN_EMAILS,
    SIGN_IN_OVERVIEW,
    SIGN_IN_ROLLOUT,
    SIGN_IN_THREAT_MODEL,
)
from operations.demo.sessions import dunning_steps, email_steps, endpoint_steps, mapping_steps
from operations.demo.stream_json import Result, Say, Tool, session_id_of, transcript
from reviews.models import ChatRole, ChatTargetType, ProposalTargetType
from reviews.services import (
    chat_message_post,
    chat_session_open,
    line_context,
    proposal_accept,
    proposal_create,
    review_comment_create,
    review_comment_resolve,
)

#: The branches of the demo's initiatives: how a loaded demo is recognized.
DEMO_BRANCHES = (BILLING_BRANCH, SIGN_IN_BRANCH)


def _doc(markdown: str) -> str:
    """A Tiptap document (as pages and phases store it) from markdown."""
    return markdown_to_tiptap_json(markdown.strip())


def _fake_secrets(email: str, number: int) -> tuple[str, str]:
    """Obviously fake ``(config_json, credentials)``: JSON, shaped as the provider's files."""
    credentials = {
        "claudeAiOauth": {
            "accessToken": f"demo-not-a-real-access-token-{number}",
            "refreshToken": f"demo-not-a-real-refresh-token-{number}",
            "expiresAt": 0,
            "scopes": ["user:inference"],
        }
    }
    config = {
        "oauthAccount": {"emailAddress": email, "organizationName": "Acme Corp (demo)"},
        "hasCompletedOnboarding": True,
    }
    return json.dumps(config), json.dumps(credentials)


class DemoBuilder:
    """Writes the demo through the services, keeping count of what it created
    (``created``), the initiatives, and the ids worth opening first (``highlights``)."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.created: dict[str, int] = {}
        self.highlights: dict[str, str] = {}
        self.initiatives: list[Initiative] = []
        self.accounts: dict[str, Account] = {}

    def count(self, kind: str, how_many: int = 1) -> None:
        self.created[kind] = self.created.get(kind, 0) + how_many

    def build(self) -> None:
        projects = self.projects()
        self.provider_accounts()
        self.billing(projects)
        self.sign_in(projects)

    # --- shared pieces -------------------------------------------------------------------

    def projects(self) -> dict[str, str]:
        """The demo's projects, each on its own git repository (``git_repos``, made
        once), fetched into cw's mirror so their phases' diffs can be read."""
        made = {}
        for key, name in (
            ("storefront", "acme-storefront"),
            ("payments", "acme-payments"),
            ("notifications", "acme-notifications"),
        ):
            codebase = CODEBASES[key]
            url = git_repos.ensure_repository(codebase).as_uri()
            branch = None if codebase.default_branch == "main" else codebase.default_branch
            project = project_create(name=name, url=url, default_branch=branch)
            made[key] = project.pk
            self.count("projects")
        for project_id in made.values():
            project_fetch(project_id=project_id)
        return made

    def provider_accounts(self) -> None:
        for number, (provider, email) in enumerate(
            (
                ("claude", "demo-ops-1@example.com"),
                ("claude", "demo-ops-2@example.com"),
                ("claude", "demo-ops-3@example.com"),
                ("claude", "demo-ops-4@example.com"),
                ("codex", "demo-codex@example.com"),
            ),
            start=1,
        ):
            config_json, credentials = _fake_secrets(email, number)
            self.accounts[email] = account_create(
                email=email,
                provider=provider,
                config_json=config_json,
                credentials=credentials,
                sort_order=number,
            )
            self.count("accounts")

    def initiative(
        self, *, name: str, branch: str, mode: str, project_ids: list[str]
    ) -> Initiative:
        initiative = initiative_create(name=name, branch=branch, execution_mode=mode)
        initiative_set_projects(initiative_id=initiative.pk, project_ids=project_ids)
        self.initiatives.append(initiative)
        self.count("initiatives")
        return initiative

    def phase(self, initiative: Initiative, name: str, markdown: str) -> Phase:
        self.count("phases")
        return phase_create(initiative_id=initiative.pk, name=name, content=_doc(markdown))

    def task(
        self,
        phase: Phase,
        name: str,
        description: str,
        *,
        order: int,
        type: str = TaskType.AUTO,
        category: str = TaskCategory.EXECUTE,
        priority: str = TaskPriority.MEDIUM,
        depends_on: tuple[Task, ...] = (),
    ) -> Task:
        task = task_create(
            phase_id=phase.pk,
            name=name,
            description=description.strip(),
            type=type,
            category=category,
            priority=priority,
            order=order,
        )
        for dependency in depends_on:
            task_add_dependency(task_id=task.pk, depends_on_id=dependency.pk)
        self.count("tasks")
        return task

    def page(
        self, initiative: Initiative, title: str, markdown: str, *, parent: Page, order: int
    ) -> Page:
        self.count("pages")
        return page_create(
            initiative_id=initiative.pk,
            title=title,
            parent_page_id=parent.pk,
            content=_doc(markdown),
            sort_order=order,
        )

    def root_page(self, initiative: Initiative, markdown: str) -> Page:
        root = page_get_or_create_root(initiative_id=initiative.pk)
        self.count("pages")
        return page_update(page_id=root.pk, content=_doc(markdown))

    def agent(
        self,
        name: str,
        *,
        initiative: Initiative,
        task: Task | None = None,
        mode: str = AgentMode.EXECUTE,
        pid: int,
    ) -> Agent:
        """Register an agent on a claimed account and start its process."""
        agent, _account = agent_register(
            worktree_id=self.cwd(initiative, name),
            name=name,
            mode=mode,
            task_id=task.pk if task else None,
            initiative_id=initiative.pk,
            claim_account=True,
        )
        self.count("agents")
        return agent_mark_running(agent_id=agent.pk, pid=pid, session_id=session_id_of(name))

    def log(self, agent: Agent, chunks: list[NewLogChunk]) -> None:
        self.count("log_chunks", len(agent_log_append(agent_id=agent.pk, chunks=chunks)))

    def ask_person(self, agent: Agent, content: str, *, type: str = MessageType.QUESTION) -> str:
        message = message_send(
            sender_type=ParticipantType.AGENT,
            sender_id=agent.pk,
            recipient_type=ParticipantType.USER,
            content=content,
            type=type,
            requires_response=type == MessageType.QUESTION,
        )
        self.count("messages")
        return message.pk

    def cwd(self, initiative: Initiative, agent_name: str) -> str:
        """The agent's git worktree (where its session runs)."""
        slug = (initiative.branch or "").removeprefix("cw/demo-")
        return f"/srv/cw/worktrees/{slug}/{agent_name}"

    # --- initiative 1: yolo ------------------------------------------------------------

    def billing(self, projects: dict[str, str]) -> None:
        initiative = self.initiative(
            name="Stripe webhooks for subscription billing",
            branch=BILLING_BRANCH,
            mode=ExecutionMode.YOLO,
            project_ids=[projects["payments"], projects["storefront"]],
        )
        root = self.root_page(initiative, BILLING_OVERVIEW)
        self.page(initiative, "Architecture", BILLING_ARCHITECTURE, parent=root, order=1)
        decisions = self.page(initiative, "Decisions", BILLING_DECISIONS, parent=root, order=2)
        self.page(
            initiative,
            "ADR-001: Verify signatures before parsing",
            BILLING_ADR_1,
            parent=decisions,
            order=1,
        )
        self.page(
            initiative,
            "ADR-002: Store raw events before processing",
            BILLING_ADR_2,
            parent=decisions,
            order=2,
        )
        self.page(
            initiative,
            "Runbook: replaying failed webhook events",
            BILLING_RUNBOOK,
            parent=root,
            order=3,
        )

        ingestion = self.phase(
            initiative,
            "Webhook ingestion",
            "Receive Stripe's webhooks, verify them and store every event **before** "
            "processing it.\n\n- `POST /webhooks/stripe` with signature verification\n"
            "- an idempotent `stripe_events` table",
        )
        state_machine = self.phase(
            initiative,
            "Subscription state machine",
            "Derive each subscription's status from the stored events, and run dunning "
            "ourselves.\n\n1. Map events to `SubscriptionStatus`\n2. Dunning: three "
            "failed attempts cancel\n3. Nightly reconciliation with Stripe",
        )
        portal = self.phase(
            initiative,
            "Customer billing portal",
            "A page where customers update their card, see invoices and cancel.",
        )
        phase_add_dependency(phase_id=state_machine.pk, depends_on_id=ingestion.pk)
        phase_add_dependency(phase_id=portal.pk, depends_on_id=state_machine.pk)

        endpoint = self.task(
            ingestion,
            "Add POST /webhooks/stripe with signature verification",
            """
Add the webhook endpoint to the payments service.

- Verify `Stripe-Signature` with `stripe.Webhook.construct_event` on the raw body.
- Answer 400 on a bad signature, 200 otherwise; do no processing in the request.
- Tests: valid signature, bad signature, missing header, replayed timestamp.
""",
            order=1,
            priority=TaskPriority.HIGH,
        )
        store = self.task(
            ingestion,
            "Persist raw events idempotently in stripe_events",
            """
Create the `stripe_events` table (id = Stripe's event id, type, payload jsonb,
received_at, processed_at) and insert each verified event with ON CONFLICT DO NOTHING.
""",
            order=2,
            depends_on=(endpoint,),
        )
        mapping = self.task(
            state_machine,
            "Map invoice and subscription events to SubscriptionStatus",
            """
Handle `customer.subscription.created|updated|deleted`, `invoice.paid` and
`invoice.payment_failed`. Events of one customer are applied in `created` order.
""",
            order=1,
            priority=TaskPriority.HIGH,
        )
        dunning = self.task(
            state_machine,
            "Dunning: cancel after three failed payment attempts",
            """
On `invoice.payment_failed` move the subscription to `past_due`; on the third failed
attempt of the same invoice cancel it and email the customer. A later `invoice.paid`
brings it back to `active`.
""",
            order=2,
            depends_on=(mapping,),
        )
        backfill = self.task(
            state_machine,
            "Backfill subscription status for existing customers",
            """
One-off job: for every customer with a Stripe subscription, fetch it and set our status.
Needs read access to the production replica (requested in OPS-2231).
""",
            order=3,
            priority=TaskPriority.LOW,
            depends_on=(mapping,),
        )
        grace = self.task(
            state_machine,
            "Decide the grace period before a past-due subscription loses access",
            """
Options: keep access for the whole dunning period (up to 3 weeks), 7 days, or none.
Finance prefers 7 days; Support prefers the whole period. Pick one: dunning emails
and the portal's banner depend on it.
""",
            order=4,
            type=TaskType.CHECKPOINT_DECISION,
            category=TaskCategory.DISCUSS,
            priority=TaskPriority.HIGH,
        )
        retries = self.task(
            state_machine,
            "Retry failed event processing with exponential backoff",
            """
An event whose processing raises is retried after 1, 4, 16 and 64 minutes, then
flagged for the replay runbook. Use the existing `jobs.retry` helper.
""",
            order=5,
        )
        reconcile = self.task(
            state_machine,
            "Nightly reconciliation of invoices with Stripe",
            """
Each night, list yesterday's invoices from Stripe and compare them with the ledger;
report mismatches to #billing-alerts.
""",
            order=6,
        )
        self.task(
            state_machine,
            "Emit billing events to the analytics pipeline",
            "Publish `subscription.status_changed` to the `billing` Kafka topic.",
            order=7,
            priority=TaskPriority.LOW,
            depends_on=(dunning,),
        )
        portal_page = self.task(
            portal,
            "Billing portal page: card, invoices, cancel",
            "Storefront page under /account/billing using Stripe Elements for the card.",
            order=1,
        )
        cancel = self.task(
            portal,
            "Cancellation flow with a reason survey",
            "Ask why before cancelling; cancel at the end of the period, not at once.",
            order=2,
            depends_on=(portal_page,),
        )
        self.task(
            portal,
            "Verify the portal on mobile Safari and Chrome",
            "Walk through update card, download invoice and cancel on both browsers.",
            order=3,
            type=TaskType.CHECKPOINT_HUMAN_VERIFY,
            category=TaskCategory.VERIFY,
            depends_on=(cancel,),
        )

        phase_approve_plan(phase_id=ingestion.pk, actor=self.actor)
        phase_approve_plan(phase_id=state_machine.pk, actor=self.actor)

        # Ingestion: both tasks done, so the phase completes at once (yolo).
        self.finished_agent(
            "ivory-mink",
            initiative,
            endpoint,
            summary=(
                "Added POST /webhooks/stripe in payments/webhooks/stripe.py. The raw body is "
                "verified with stripe.Webhook.construct_event (tolerance 300 s) before any "
                "parsing; a bad or missing signature answers 400. The signing secret is "
                "read from STRIPE_WEBHOOK_SECRET. 4 tests in tests/webhooks."
            ),
            steps=endpoint_steps(self.cwd(initiative, "ivory-mink")),
            pid=47731,
            stop=True,
        )
        task_start(task_id=store.pk)
        task_complete(
            task_id=store.pk,
            summary=(
                "Migration 0031 creates stripe_events (id text primary key = Stripe's "
                "event id, type, payload jsonb, received_at, processed_at null). The "
                "endpoint inserts with ON CONFLICT (id) DO NOTHING, so redeliveries are "
                "no-ops; an index on (processed_at) serves the worker's queue."
            ),
        )

        # The state machine: one task done, one running, one crashed, one blocked.
        kestrel = self.finished_agent(
            "scarlet-kestrel",
            initiative,
            mapping,
            summary=(
                "billing/events.py maps customer.subscription.* and invoice.paid / "
                "invoice.payment_failed to SubscriptionStatus; unknown types are stored "
                "and skipped. SubscriptionEvent.attempt_count comes from "
                "invoice.attempt_count. Events are applied per customer in created order "
                "(select_for_update on the subscription). 12 tests."
            ),
            steps=mapping_steps(self.cwd(initiative, "scarlet-kestrel")),
            pid=47902,
        )
        magpie = self.agent("cobalt-magpie", initiative=initiative, task=dunning, pid=48213)
        task_start(task_id=dunning.pk)
        cwd = self.cwd(initiative, "cobalt-magpie")
        self.log(magpie, transcript("cobalt-magpie", cwd, dunning_steps()))
        question = conversation_ask(
            from_agent_id=magpie.pk,
            to_agent_id=kestrel.pk,
            question=(
                "In map_stripe_event you move a subscription to PAST_DUE on the first "
                "invoice.payment_failed. For dunning I need the attempt number: is "
                "invoice.attempt_count persisted anywhere, or only in the raw payload?"
            ),
            initiative_id=initiative.pk,
            phase_id=state_machine.pk,
            task_id=dunning.pk,
        )
        conversation_answer(
            conversation_id=question.pk,
            answer=(
                "Both: SubscriptionEvent.attempt_count is set from invoice.attempt_count "
                "(billing/events.py line 88), and stripe_events.payload keeps the full "
                "invoice. Note Stripe counts the first attempt as 1."
            ),
        )
        self.count("conversations")
        self.ask_person(
            magpie,
            "The dunning emails say how long the customer keeps access, which the "
            "checkpoint 'Decide the grace period…' has not settled yet. May I write them "
            "for 7 days now and change the copy later if the decision differs?",
        )

        self.crashed_agent(initiative, reconcile)
        task_block(task_id=backfill.pk)

        self.planner(initiative, state_machine, dunning, decisions)
        self.highlights["ready_task_id"] = retries.pk
        self.highlights["waiting_checkpoint_id"] = grace.pk

    def finished_agent(
        self,
        name: str,
        initiative: Initiative,
        task: Task,
        *,
        summary: str,
        steps: list[Say | Tool],
        pid: int,
        stop: bool = False,
    ) -> Agent:
        """An agent that did ``task`` and completed it with ``summary``; idle after its
        turn, or stopped (and dismissed from the working views) when ``stop``."""
        agent = self.agent(name, initiative=initiative, task=task, pid=pid)
        task_start(task_id=task.pk)
        result = Result(summary, turns=len(steps) + 3, cost_usd=0.38, duration_ms=212_000)
        self.log(agent, transcript(name, self.cwd(initiative, name), steps, result))
        task_complete(task_id=task.pk, summary=summary)
        outcome = {"subtype": "success", "result": summary, "num_turns": result.turns}
        if stop:
            agent_mark_stopped(agent_id=agent.pk, exit_code=0, result=outcome)
            return agent_dismiss(agent_id=agent.pk)
        return agent_mark_idle(agent_id=agent.pk, exit_code=0, result=outcome)

    def crashed_agent(self, initiative: Initiative, task: Task) -> None:
        """An agent whose provider account hit its usage limit: the process died, the
        account is parked until tomorrow, and the team is told."""
        name = "indigo-pangolin"
        agent = self.agent(name, initiative=initiative, task=task, pid=48377)
        task_start(task_id=task.pk)
        until = timezone.now() + timedelta(days=1)
        limit = f"Claude AI usage limit reached|{int(until.timestamp())}"
        steps: list[Say | Tool] = [
            Say(
                "I'll write the nightly reconciliation job: list yesterday's invoices "
                "from Stripe and compare them with our ledger entries."
            ),
            Tool(
                "Glob",
                {"pattern": "payments/jobs/*.py"},
                "payments/jobs/__init__.py\npayments/jobs/replay_events.py\npayments/jobs/retry.py",
            ),
            Tool(
                "Read",
                {"file_path": f"{self.cwd(initiative, name)}/payments/ledger.py"},
                "     1\tfrom decimal import Decimal\n     2\t\n     3\tfrom payments.db "
                "import session\n     4\t\n     5\t\n     6\tdef invoice_totals(day):\n"
                '     7\t    """Amount booked per Stripe invoice id on ``day``."""',
            ),
            Say(limit),
        ]
        result = Result(
            limit, turns=4, cost_usd=0.07, duration_ms=41_000, is_error=True, subtype="error"
        )
        self.log(agent, transcript(name, self.cwd(initiative, name), steps, result))
        crashed = agent_mark_crashed(
            agent_id=agent.pk, exit_code=1, result={"is_error": True, "result": limit}
        )
        assert crashed.account_id is not None  # registered with a claimed account
        account = account_mark_exhausted(account_id=crashed.account_id, until=until)
        self.ask_person(
            agent,
            f"I stopped: the account {account.email} reached its usage limit and is parked "
            f"until {until:%Y-%m-%d %H:%M} UTC. The task '{task.name}' stays in progress; "
            "it resumes on the next free account.",
            type=MessageType.ERROR,
        )
        self.highlights["exhausted_account_id"] = account.pk

    def planner(self, initiative: Initiative, phase: Phase, dunning: Task, decisions: Page) -> None:
        """A planning agent that read the plan and proposed a page, a phase and a task,
        which wait for a person."""
        name = "ochre-lark"
        agent = self.agent(name, initiative=initiative, mode=AgentMode.PLAN, pid=48502)
        api = "$CW_API/api"
        steps: list[Say | Tool] = [
            Say("Reading the initiative's pages and plan to find what is still missing."),
            Tool(
                "Bash",
                {
                    "command": f'curl -s -H "Authorization: Bearer $CW_TOKEN" '
                    f"{api}/initiatives/{initiative.pk}/phases",
                    "description": "List the initiative's phases",
                },
                json.dumps(
                    {
                        "items": [
                            {"name": "Webhook ingestion", "status": "completed"},
                            {"name": "Subscription state machine", "status": "in_progress"},
                            {"name": "Customer billing portal", "status": "pending"},
                        ],
                        "total": 3,
                    }
                ),
            ),
            Say(
                "Three gaps: no runbook for rotating the webhook signing secret, nothing "
                "watches billing events in production, and no test covers a duplicate "
                "delivery during dunning. Proposing one page, one phase and one task."
            ),
            Tool(
                "Bash",
                {
                    "command": f"curl -s -X POST {api}/proposals -d @proposals.json",
                    "description": "Submit the three proposals",
                },
                '{"created": 3, "status": "pending"}',
            ),
        ]
        result = Result(
            "Proposed 1 page, 1 phase and 1 task; they wait for review.",
            turns=7,
            cost_usd=0.21,
            duration_ms=96_000,
        )
        self.log(agent, transcript(name, self.cwd(initiative, name), steps, result))
        proposed: list[dict[str, Any]] = [
            {
                "target_type": ProposalTargetType.PAGE,
                "title": "ADR-003: Rotating the webhook signing secret",
                "summary": "Stripe allows two signing secrets at once; document the rotation.",
                "content": (
                    "# ADR-003: Rotating the webhook signing secret\n\n"
                    "Stripe keeps the old secret valid for up to 24 hours after rolling it. "
                    "We verify against **both** `STRIPE_WEBHOOK_SECRET` and "
                    "`STRIPE_WEBHOOK_SECRET_PREVIOUS` during that window.\n\n"
                    "1. Roll the secret in the Stripe dashboard.\n"
                    "2. Set the new one, keep the old as `_PREVIOUS`; deploy.\n"
                    "3. After 24 hours remove `_PREVIOUS`; deploy."
                ),
                "metadata": {"parent_page_id": decisions.pk, "sort_order": 3},
            },
            {
                "target_type": ProposalTargetType.PHASE,
                "title": "Observability for billing events",
                "summary": "Nothing alerts us when webhooks stop arriving or processing lags.",
                "content": (
                    "Dashboards and alerts for the webhook pipeline:\n\n"
                    "- events received per minute, by type\n"
                    "- processing lag (oldest unprocessed event)\n"
                    "- alert when no event arrived for 30 minutes in business hours"
                ),
                "metadata": {"dependencies": [phase.pk]},
            },
            {
                "target_type": ProposalTargetType.TASK,
                "title": "Test a duplicate invoice.payment_failed during dunning",
                "summary": "Stripe may deliver an event twice; dunning must not count it twice.",
                "content": (
                    "Deliver the same `invoice.payment_failed` event twice and assert the "
                    "attempt count and status move once."
                ),
                "metadata": {
                    "phase_id": phase.pk,
                    "category": TaskCategory.VERIFY,
                    "priority": TaskPriority.MEDIUM,
                    "dependencies": [dunning.pk],
                },
            },
        ]
        for fields in proposed:
            proposal_create(agent_id=agent.pk, initiative_id=initiative.pk, **fields)
            self.count("proposals")
        agent_mark_idle(
            agent_id=agent.pk, exit_code=0, result={"subtype": "success", "proposals": 3}
        )

    # --- initiative 2: review per phase ------------------------------------------------

    def sign_in(self, projects: dict[str, str]) -> None:
        initiative = self.initiative(
            name="Passwordless sign-in with magic links",
            branch=SIGN_IN_BRANCH,
            mode=ExecutionMode.REVIEW_PER_PHASE,
            project_ids=[projects["storefront"], projects["notifications"]],
        )
        root = self.root_page(initiative, SIGN_IN_OVERVIEW)
        self.page(initiative, "Threat model", SIGN_IN_THREAT_MODEL, parent=root, order=1)
        emails = self.page(initiative, "Email templates", SIGN_IN_EMAILS, parent=root, order=2)
        self.page(initiative, "Rollout plan", SIGN_IN_ROLLOUT, parent=root, order=3)

        tokens = self.phase(
            initiative,
            "Tokens and email delivery",
            "Issue single-use sign-in tokens and email them as links.",
        )
        flow = self.phase(
            initiative,
            "Sign-in flow and sessions",
            "Exchange a link for a session, and replace the sign-in form.",
        )
        abuse = self.phase(
            initiative,
            "Abuse protection",
            "Rate limits and sending quotas, so the form cannot be used to spam anyone.",
        )
        phase_add_dependency(phase_id=flow.pk, depends_on_id=tokens.pk)

        model = self.task(
            tokens,
            "MagicLinkToken model with hashed token and expiry",
            """
Model in `accounts/models.py`: user, token_hash (SHA-256, unique), created_at,
expires_at (15 minutes), used_at. Only the hash is stored; the raw token goes into
the link once.
""",
            order=1,
            priority=TaskPriority.HIGH,
        )
        send = self.task(
            tokens,
            "Send the sign-in email through the transactional mailer",
            "HTML and plain-text parts; see the 'Email templates' page for the wording.",
            order=2,
            depends_on=(model,),
        )
        render_check = self.task(
            tokens,
            "Check the email renders in Gmail, Outlook and Apple Mail",
            "Send a test link to the QA inboxes; check dark mode and the plain-text part.",
            order=3,
            type=TaskType.CHECKPOINT_HUMAN_VERIFY,
            category=TaskCategory.VERIFY,
            depends_on=(send,),
        )
        verify = self.task(
            flow,
            "GET /auth/magic-link/verify exchanges a token for a session",
            "Look the token up, check it, start a session and redirect to /account.",
            order=1,
        )
        sessions = self.task(
            flow,
            "Replace the sign-in form with the email-only form",
            "Keep 'Use a password instead' behind the magic_link_sign_in flag.",
            order=2,
            depends_on=(verify,),
        )
        self.task(
            flow,
            "Try the whole sign-in on a phone and a laptop",
            "Ask on the laptop, click on the phone, and the other way round.",
            order=3,
            type=TaskType.CHECKPOINT_HUMAN_VERIFY,
            category=TaskCategory.VERIFY,
            depends_on=(sessions,),
        )
        limits = self.task(
            abuse,
            "Rate-limit POST /auth/magic-link",
            "Use the storefront's SlidingWindowLimiter; answer 429 with Retry-After.",
            order=1,
            priority=TaskPriority.HIGH,
        )
        quota = self.task(
            abuse,
            "Raise the SendGrid daily sending quota to 200k",
            "Only an account owner can file the request in SendGrid's console.",
            order=2,
            type=TaskType.CHECKPOINT_HUMAN_ACTION,
            category=TaskCategory.EXECUTE,
        )
        self.task(
            abuse,
            "Add an invisible CAPTCHA after 3 requests from one IP",
            "Turnstile in managed mode; never shown on the first requests.",
            order=3,
            priority=TaskPriority.LOW,
        )

        for phase in (tokens, flow, abuse):
            phase_approve_plan(phase_id=phase.pk, actor=self.actor)

        # Tokens and email delivery: done, then waiting for a person's review.
        task_start(task_id=model.pk)
        task_complete(
            task_id=model.pk,
            summary=(
                "accounts.MagicLinkToken with token_hash (sha256 hex, unique), expires_at "
                "(created_at + 15 min) and used_at. MagicLinkToken.issue(user) returns the "
                "raw token once; MagicLinkToken.redeem(raw) checks expiry and single use "
                "under select_for_update. Migration 0044."
            ),
        )
        wren = self.finished_agent(
            "copper-wren",
            initiative,
            send,
            summary=(
                "notifications: send_magic_link(user, link, request_info) renders "
                "email/magic_link.html and .txt and sends through the transactional "
                "mailer with the 'auth' category. The email names the browser and the "
                "approximate location (city, country), never the raw IP."
            ),
            steps=email_steps(self.cwd(initiative, "copper-wren")),
            pid=50877,
        )
        asked = self.ask_person(
            wren,
            "Should the sign-in email say where the request came from? I can include the "
            "browser, the approximate location, and the IP address.",
        )
        message_reply(
            message_id=asked,
            sender_type=ParticipantType.USER,
            content=(
                "Browser and approximate location, yes. Not the raw IP: it is personal "
                "data and means nothing to most customers."
            ),
            actor=self.actor,
        )
        self.count("messages")
        task_complete(
            task_id=render_check.pk,
            summary=(
                "Checked in Gmail (web, Android), Outlook 365 and Apple Mail, light and "
                "dark mode: renders well. The plain-text part shows the full link."
            ),
            actor=self.actor,
        )
        self.review(tokens, projects)

        # Abuse protection: an agent waits for a person's answer; a checkpoint waits.
        self.waiting_agent(initiative, limits, wren)
        self.highlights["human_action_checkpoint_id"] = quota.pk

        # Sign-in flow: a person refines a task in a chat with an agent.
        self.chat(initiative, verify)
        self.page_update_proposal(initiative, wren, emails)

    def review(self, phase: Phase, projects: dict[str, str]) -> None:
        """A person's comments on the diff of a phase waiting for review, each on a line
        of the demo's repositories (with its text and hunk, as the review page keeps
        them); one resolved."""
        project_of = {CODEBASES[key].name: pk for key, pk in projects.items()}
        for comment in REVIEW_COMMENTS:
            project_id = project_of[comment.codebase.name]
            where: dict[str, Any] = {
                "file_path": comment.path,
                "line_number": comment.line_number,
                "line_type": comment.line_type,
            }
            context = line_context(phase_id=phase.pk, project_id=project_id, **where)
            made = review_comment_create(
                phase_id=phase.pk,
                body=comment.body,
                author=self.actor.name,
                **{**where, "project_id": project_id, **context},
            )
            if comment.resolved:
                review_comment_resolve(comment_id=made.pk)
        self.count("review_comments", len(REVIEW_COMMENTS))
        self.highlights["phase_in_review_id"] = phase.pk

    def waiting_agent(self, initiative: Initiative, task: Task, colleague: Agent) -> None:
        name = "saffron-tern"
        agent = self.agent(name, initiative=initiative, task=task, pid=51108)
        task_start(task_id=task.pk)
        question = (
            "Should magic-link requests be limited per email address, per client IP, or "
            "both? Per IP alone is easy to get around; per email alone lets anyone lock a "
            "customer out of sign-in. I suggest both: 5 an hour per email, 20 per IP."
        )
        cwd = self.cwd(initiative, name)
        steps: list[Say | Tool] = [
            Say("Adding rate limits to POST /auth/magic-link. Looking for a limiter first."),
            Tool(
                "Grep",
                {"pattern": "class \\w*Limiter", "path": "storefront", "output_mode": "content"},
                "storefront/middleware/ratelimit.py:12:class SlidingWindowLimiter:",
            ),
            Tool(
                "Read",
                {"file_path": f"{cwd}/storefront/middleware/ratelimit.py", "limit": 30},
                "    12\tclass SlidingWindowLimiter:\n    13\t    def __init__(self, redis, "
                "*, key, limit, window):\n    14\t        self.redis = redis\n",
            ),
            Say(question),
        ]
        result = Result(question, turns=5, cost_usd=0.12, duration_ms=58_000)
        self.log(agent, transcript(name, cwd, steps, result))
        agent_mark_waiting(agent_id=agent.pk, pending_questions=[{"question": question}])
        self.ask_person(agent, question)
        conversation_ask(
            from_agent_id=agent.pk,
            to_agent_id=colleague.pk,
            question=(
                "Does send_magic_link raise when the mailer refuses a recipient, or return "
                "False? A 429 must not be answered before we know the email was not sent."
            ),
            initiative_id=initiative.pk,
            task_id=task.pk,
        )
        self.count("conversations")
        message_send(
            sender_type=ParticipantType.USER,
            recipient_type=ParticipantType.AGENT,
            recipient_id=agent.pk,
            content="Heads-up: staging Redis restarts at 15:00 UTC; rerun flaky tests after.",
        )
        self.count("messages")

    def chat(self, initiative: Initiative, task: Task) -> None:
        """A person refines a task with an agent: the agent proposes a better description,
        the person accepts it, and the agent's reply names the change set (revertible)."""
        name = "slate-ibex"
        agent = self.agent(name, initiative=initiative, mode=AgentMode.REFINE, pid=51240)
        session, _opened = chat_session_open(
            target_type=ChatTargetType.TASK, target_id=task.pk, agent_id=agent.pk
        )
        self.count("chat_sessions")
        chat_message_post(
            session_id=session.pk,
            role=ChatRole.USER,
            content=(
                "This task is too thin for an agent. Tokens must be single-use, and the "
                "endpoint must not reveal whether a token ever existed. Make it "
                "high priority, it blocks the whole phase."
            ),
        )
        proposal = proposal_create(
            agent_id=agent.pk,
            initiative_id=initiative.pk,
            target_type=ProposalTargetType.TASK,
            target_id=task.pk,
            title=task.name,
            summary="Acceptance criteria for single use and for what failures reveal.",
            content=(
                "Exchange a magic-link token for a session.\n\n"
                "- Redeem with `MagicLinkToken.redeem(raw)`: one query under "
                "`select_for_update`; a used or expired token fails.\n"
                "- Every failure (unknown, used, expired) redirects to `/sign-in?link=invalid` "
                "with the same response and timing.\n"
                "- On success rotate the session key, then redirect to `/account`.\n"
                "- Tests: each failure, double click (two requests), success."
            ),
            metadata={"priority": TaskPriority.HIGH},
        )
        self.count("proposals")
        change_set = proposal_accept(proposal_id=proposal.pk, actor=self.actor)
        self.count("change_sets")
        chat_message_post(
            session_id=session.pk,
            role=ChatRole.ASSISTANT,
            content=(
                "Done: the task now lists the acceptance criteria (single use under a row "
                "lock, one response for every failure, session key rotation) and is high "
                "priority. Revert the change if you preferred it as it was."
            ),
            change_set_id=change_set.pk,
        )
        self.count("chat_messages", 2)
        steps: list[Say | Tool] = [
            Say("Reading the task and the threat model before suggesting changes."),
            Tool(
                "Bash",
                {
                    "command": f'curl -s -H "Authorization: Bearer $CW_TOKEN" '
                    f"$CW_API/api/tasks/{task.pk}",
                    "description": "Read the task",
                },
                json.dumps({"id": task.pk, "name": task.name, "priority": "medium"}),
            ),
            Say(
                "Proposed a fuller description (single use, identical failures, session "
                "rotation) and high priority."
            ),
        ]
        result = Result("Proposed a refined task description.", 4, 0.09, 37_000)
        self.log(agent, transcript(name, self.cwd(initiative, name), steps, result))
        agent_mark_idle(agent_id=agent.pk, exit_code=0, result={"subtype": "success"})
        self.highlights["chat_session_id"] = session.pk
        self.highlights["revertible_change_set_id"] = change_set.pk

    def page_update_proposal(self, initiative: Initiative, agent: Agent, page: Page) -> None:
        proposal_create(
            agent_id=agent.pk,
            initiative_id=initiative.pk,
            target_type=ProposalTargetType.PAGE,
            target_id=page.pk,
            title="Email templates",
            summary="Say what the email shows, as decided in the team's answer.",
            content=(
                "# Email templates\n\n"
                "The magic-link email has an HTML and a plain-text part. It says:\n\n"
                "- which browser and approximate location (city, country) asked for the "
                "link, never the IP address;\n"
                "- that the link expires in 15 minutes;\n"
                "- what to do if you did not ask for it (nothing: the link expires)."
            ),
        )
        self.count("proposals")
