"""What may happen to agents' records, one module per topic: accounts, agents, logs,
messages, conversations, runs (with a person's requeue of a task), budgets and
take-next.

Every public ``<entity>_<action>`` function is keyword-only and one transaction, raises
``core.errors`` domain errors with stable codes, and records its event (``core.events``)
in that transaction. Every door (the API, the admin, commands) calls these.
"""

from agents.services.accounts import (
    SECRET_FIELDS,
    account_claim,
    account_clear_expired_exhaustion,
    account_create,
    account_delete,
    account_mark_exhausted,
    account_release,
    account_report_exhausted,
    account_rotate_secrets,
    account_update,
    claim_next_account,
    record_account_claimed,
    validate_account_fields,
)
from agents.services.agents import (
    ALLOWED_FROM,
    DISMISSIBLE_FROM,
    agent_delete,
    agent_dismiss,
    agent_mark_crashed,
    agent_mark_idle,
    agent_mark_running,
    agent_mark_stopped,
    agent_mark_waiting,
    agent_register,
    agent_update,
)
from agents.services.budgets import (
    budget_create,
    budget_delete,
    budget_update,
    run_limit_create,
    run_limit_delete,
    run_limit_update,
)
from agents.services.conversations import (
    conversation_answer,
    conversation_ask,
    conversation_delete,
    conversation_list_pending,
    conversation_list_pending_waiting,
    conversation_update,
)
from agents.services.logs import (
    MAX_LOG_BATCH,
    agent_log_append,
    agent_log_delete,
    agent_log_iter,
    agent_log_prune,
    check_log_batch_size,
)
from agents.services.messages import (
    message_delete,
    message_mark_read,
    message_reply,
    message_send,
    message_update,
)
from agents.services.runs import (
    run_cancel,
    run_finish,
    run_heartbeat,
    run_sweep,
    task_requeue,
)
from agents.services.take_next import TakeNext, run_take_next

__all__ = [
    "ALLOWED_FROM",
    "DISMISSIBLE_FROM",
    "MAX_LOG_BATCH",
    "SECRET_FIELDS",
    "TakeNext",
    "account_claim",
    "account_clear_expired_exhaustion",
    "account_create",
    "account_delete",
    "account_mark_exhausted",
    "account_release",
    "account_report_exhausted",
    "account_rotate_secrets",
    "account_update",
    "agent_delete",
    "agent_dismiss",
    "agent_log_append",
    "agent_log_delete",
    "agent_log_iter",
    "agent_log_prune",
    "agent_mark_crashed",
    "agent_mark_idle",
    "agent_mark_running",
    "agent_mark_stopped",
    "agent_mark_waiting",
    "agent_register",
    "agent_update",
    "budget_create",
    "budget_delete",
    "budget_update",
    "check_log_batch_size",
    "claim_next_account",
    "conversation_answer",
    "conversation_ask",
    "conversation_delete",
    "conversation_list_pending",
    "conversation_list_pending_waiting",
    "conversation_update",
    "message_delete",
    "message_mark_read",
    "message_reply",
    "message_send",
    "message_update",
    "record_account_claimed",
    "run_cancel",
    "run_finish",
    "run_heartbeat",
    "run_limit_create",
    "run_limit_delete",
    "run_limit_update",
    "run_sweep",
    "run_take_next",
    "task_requeue",
    "validate_account_fields",
]
