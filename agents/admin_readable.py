"""An agent's result and pending questions on its admin page in words, not JSON: the
result as labelled fields (Claude Code's result record named in words), the questions
as a numbered list with the answers each offers (``agents.questions``)."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from agents.models import Agent
from agents.questions import Question, read_questions
from core.admin.readable import READABLE_CSS, json_readable, json_text_readable

#: The JSON columns shown in words (their JSON text is not on the form).
AGENT_JSON_FIELDS = ("result", "pending_questions")

#: The keys of Claude Code's ``result`` record (``--output-format stream-json``), in words.
RESULT_LABELS = {
    "type": "Record",
    "subtype": "Outcome",
    "is_error": "Ended in error",
    "result": "Result",
    "num_turns": "Turns",
    "duration_ms": "Duration (ms)",
    "duration_api_ms": "Time in the API (ms)",
    "total_cost_usd": "Cost (USD)",
    "session_id": "Session",
}


def questions_html(questions: list[Question]) -> SafeString:
    """The questions as a numbered list, each with its header, its text, and the
    answers it offers (label and description)."""
    if not questions:
        return json_readable(None)
    items = []
    for question in questions:
        options = format_html_join(
            "",
            "<li><strong>{}</strong>{}</li>",
            (
                (
                    option.label,
                    format_html(" — {}", option.description) if option.description else "",
                )
                for option in question.options
            ),
        )
        items.append(
            format_html(
                "<li>{}{}{}{}</li>",
                format_html('<span class="cw-question-header">{}</span>', question.header)
                if question.header
                else "",
                question.text,
                format_html(' <span class="cw-quiet">(several may be chosen)</span>')
                if question.multiple and question.options
                else "",
                format_html("<ul>{}</ul>", options) if question.options else "",
            )
        )
    return format_html(
        '<ol class="cw-questions">{}</ol>', format_html_join("", "{}", ((item,) for item in items))
    )


class AgentReadableAdmin(admin.ModelAdmin):
    """Adds the agent's result and pending questions in words (read-only) to its page,
    in place of their JSON."""

    class Media:
        css = {"all": (READABLE_CSS,)}

    @admin.display(description="result")
    def result_in_words(self, agent: Agent) -> SafeString:
        return json_text_readable(agent.result, labels=RESULT_LABELS)

    @admin.display(description="pending questions")
    def questions_in_words(self, agent: Agent) -> SafeString:
        return questions_html(read_questions(agent.pending_questions))
