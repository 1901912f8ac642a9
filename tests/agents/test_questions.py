"""An agent's pending questions read from its JSON, whatever the shape
(``agents.questions``), and written as plain lines for the terminal."""

import json

from agents.questions import Question, QuestionOption, questions_as_lines, read_questions

ASK_USER_QUESTION = {
    "questions": [
        {
            "question": "Which database should the service use?",
            "header": "Database",
            "options": [
                {"label": "PostgreSQL", "description": "Row locks, several workers"},
                {"label": "SQLite", "description": "One file, one machine"},
            ],
            "multiSelect": False,
        },
        {
            "question": "Which checks should run?",
            "header": "Checks",
            "options": [{"label": "lint"}, {"label": "types"}],
            "multiSelect": True,
        },
    ]
}


def test_claude_codes_questions_are_read_with_their_options():
    first, second = read_questions(json.dumps(ASK_USER_QUESTION))
    assert first == Question(
        "Which database should the service use?",
        header="Database",
        options=(
            QuestionOption("PostgreSQL", "Row locks, several workers"),
            QuestionOption("SQLite", "One file, one machine"),
        ),
    )
    assert second.multiple and [o.label for o in second.options] == ["lint", "types"]


def test_texts_lists_and_objects_of_other_shapes_are_read_too():
    assert read_questions('["Which database?", "Why?"]') == [
        Question("Which database?"),
        Question("Why?"),
    ]
    assert read_questions('"Which?"') == [Question("Which?")]
    assert read_questions("not JSON at all") == [Question("not JSON at all")]
    assert read_questions([{"text": "Pick one", "choices": ["a", "b"]}]) == [
        Question("Pick one", options=(QuestionOption("a"), QuestionOption("b")))
    ]
    assert read_questions({"topic": "auth", "urgent": True}) == [
        Question("topic: auth; urgent: true")
    ]
    assert read_questions(None) == [] and read_questions("[]") == []


def test_questions_are_written_as_numbered_lines_with_their_answers():
    assert questions_as_lines(read_questions(ASK_USER_QUESTION)) == [
        "1. [Database] Which database should the service use?",
        "   - PostgreSQL: Row locks, several workers",
        "   - SQLite: One file, one machine",
        "2. [Checks] Which checks should run? (several may be chosen)",
        "   - lint",
        "   - types",
    ]
