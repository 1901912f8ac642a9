"""The error codes the agents app raises, declared in the one catalogue (``core.errors``).

Loaded by ``AgentsConfig.ready()``. Codes carried by the agents' model constraints
(``account_email_taken``, ``agent_name_taken``, …) are declared on the constraints, and the
codes every app shares (``invalid_status``, ``empty_content``, …) in ``core.errors``.
"""

from core.errors import Conflict, InvalidInput, NotFound, PermissionRequired, declare, rename

declare("agents", "account_not_found", NotFound, "No account has this id.")
declare("agents", "agent_not_found", NotFound, "No agent has this id.")
declare("agents", "message_not_found", NotFound, "No message has this id.")
declare("agents", "agent_log_chunk_not_found", NotFound, "No agent log chunk has this id.")
declare("agents", "conversation_not_found", NotFound, "No conversation has this id.")

# Accounts (account_email_taken is declared on its constraint, agents.models.Account).
declare(
    "agents",
    "invalid_provider",
    InvalidInput,
    "A provider cw does not know (`details.allowed` lists them, `agents.models.Provider`).",
)
rename("account_duplicate", "account_email_taken")
declare("agents", "invalid_email", InvalidInput, "An account's email is not an email address.")
declare(
    "agents",
    "invalid_json",
    InvalidInput,
    "An account secret (`config_json`, `credentials`) is not JSON text.",
)
declare(
    "agents",
    "invalid_exhausted_until",
    InvalidInput,
    "`exhausted_until` is not a date and time.",
)
rename("exhausted_until_invalid", "invalid_exhausted_until")
declare(
    "agents",
    "exhausted_until_naive",
    InvalidInput,
    "`exhausted_until` carries no time zone.",
)
declare("agents", "exhausted_until_past", InvalidInput, "`exhausted_until` is not in the future.")
declare(
    "agents",
    "exhausted_until_too_far",
    InvalidInput,
    "`exhausted_until` is more than a year away.",
)
declare(
    "agents",
    "account_unavailable",
    Conflict,
    "No account of the provider is available: all are exhausted, or none exists.",
)
rename("no_account_available", "account_unavailable")
declare(
    "agents",
    "account_secret_unreadable",
    Conflict,
    "The claimed account's stored secrets cannot be decrypted with `CW_SECRET_KEYS` "
    "(`details.account_ids`): restore the key, or set the secrets again.",
)

# Agents, messages, log chunks and conversations.
declare(
    "agents",
    "agent_name_unavailable",
    Conflict,
    "No free agent name could be generated; pass one explicitly.",
)
declare(
    "agents",
    "message_parent_cycle",
    InvalidInput,
    "A message cannot reply to itself or to one of its own replies.",
)
declare(
    "agents",
    "invalid_log_chunk",
    InvalidInput,
    "A log chunk is malformed: not an object, a key missing or unknown, or a value of the "
    "wrong type (`details.index` names the chunk of a batch). Its content may be any text.",
)
declare(
    "agents",
    "conversation_already_answered",
    Conflict,
    "The conversation has already been answered.",
)
declare("agents", "empty_question", InvalidInput, "The question is missing or blank.")
declare("agents", "empty_answer", InvalidInput, "The answer is missing or blank.")
declare(
    "agents",
    "agent_already_dismissed",
    Conflict,
    "The agent has already been dismissed.",
)
declare(
    "agents",
    "empty_log_batch",
    InvalidInput,
    "A log append has no chunk.",
)
rename("log_batch_empty", "empty_log_batch")
declare(
    "agents",
    "log_batch_too_large",
    InvalidInput,
    "A log append has more than 1,000 chunks (`details.max_chunks`).",
)
declare(
    "agents",
    "invalid_log_body",
    InvalidInput,
    "A log append's body is not a JSON array of chunks nor NDJSON text.",
)
declare(
    "agents",
    "message_recipient_required",
    InvalidInput,
    "A message to an agent does not name the agent (`recipient_id`).",
)
declare(
    "agents",
    "message_sender_required",
    InvalidInput,
    "A message from an agent does not name the agent (`sender_id`).",
)

# Runs, their usage, budgets and limits (issue 21). The codes of the runs' constraints
# (task_has_live_run, agent_has_live_run, run_attempt_taken, invalid_ended_at,
# invalid_usage, invalid_session_number, invalid_metric, …) are declared on the
# constraints.
declare("agents", "run_not_found", NotFound, "No run has this id.")
declare("agents", "run_commit_not_found", NotFound, "No run commit has this id.")
declare("agents", "run_usage_not_found", NotFound, "No usage report has this id.")
declare("agents", "budget_not_found", NotFound, "No budget has this id.")
declare("agents", "run_limit_not_found", NotFound, "No run limit has this id.")
declare(
    "agents",
    "invalid_scope_type",
    InvalidInput,
    "A budget's, limit's or usage bucket's scope is not one of its kinds "
    "(budgets: all, initiative, phase, task, account; limits: all, initiative, account, "
    "runner).",
)
declare("agents", "empty_usage_batch", InvalidInput, "A usage report batch has no report.")
declare(
    "agents",
    "usage_batch_too_large",
    InvalidInput,
    "A usage report batch has more than 1,000 reports (`details.max_reports`).",
)
declare(
    "agents",
    "budget_scope_not_found",
    NotFound,
    "A budget names an initiative, phase, task or account that does not exist.",
)
declare(
    "agents",
    "run_limit_scope_not_found",
    NotFound,
    "A run limit names an initiative or account that does not exist.",
)
declare(
    "agents",
    "run_not_live",
    Conflict,
    "The run is over (`details.outcome`: finished, lost, cancelled, stopped by a budget): "
    "its runner must stop the process and report nothing more.",
)
declare(
    "agents",
    "run_not_held",
    Conflict,
    "The run is held by another runner (`details.runner_name`) than the one that asked.",
)
declare(
    "agents",
    "run_commit_other_initiative",
    InvalidInput,
    "A commit names a project that is not linked to the run's initiative (`details.project_ids`).",
)
declare(
    "agents",
    "invalid_run_outcome",
    InvalidInput,
    "A runner finishes a run as succeeded, failed, crashed or stopped (`details.allowed`).",
)

# Take-next.
declare(
    "agents",
    "invalid_runner_name",
    InvalidInput,
    "A runner's name is text of 1 to 255 characters.",
)
declare(
    "agents",
    "invalid_runner_host",
    InvalidInput,
    "A runner's host is text of 1 to 255 characters.",
)
declare(
    "agents",
    "invalid_providers",
    InvalidInput,
    "A runner names 1 to 20 providers it can run, each a name of at most 64 characters.",
)
declare(
    "agents",
    "unknown_provider",
    InvalidInput,
    "A provider the runner names has no account in cw (`details.unknown`).",
)
declare(
    "agents",
    "invalid_heartbeat_timeout",
    InvalidInput,
    "A run's heartbeat timeout is a whole number of seconds from 10 to 86,400.",
)

# A run's token and a resume (issue 22).
declare(
    "agents",
    "run_token_out_of_scope",
    PermissionRequired,
    "A run's token (`CW_RUN_TOKEN`) called an operation its agent may not, or named another "
    "agent, task, run or initiative than its run's (`details.operation`, `details.reason`); "
    "the operations it may call are listed in `agents/run_tokens.py` and docs/decisions.md.",
)
declare(
    "agents",
    "run_attempts_spent",
    Conflict,
    "A resume's crash of the run would be the task's last failed attempt (`details.failures` of "
    "the initiative's `details.max_attempts`): the runner finishes the run crashed instead.",
)
declare(
    "agents",
    "run_not_resumable",
    Conflict,
    "The run to resume has no agent or no account any more: its runner finishes it instead.",
)
declare(
    "agents",
    "budget_spent",
    Conflict,
    "A budget the run counts against is spent (`details.budget_ids`): it cannot be resumed.",
)
