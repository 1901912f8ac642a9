"""Schemas every router shares: the one error shape, pagination, and the kinds of input.

Lists take ``PageParams`` as query parameters and answer ``Page[ItemOut]``::

    @router.get("/accounts", response={200: Page[AccountOut], **AUTH_ERRORS})
    def list_accounts(request, page: Query[PageParams]):
        return paginate(AccountRepository().queryset(), page)

A ``limit`` above ``MAX_LIMIT`` is refused with 400 ``invalid_limit``, not clamped, so a
caller never mistakes a short page for the end of the list; so is an ``offset`` above
``MAX_OFFSET`` (which would overflow the database driver), with ``invalid_offset``.
"""

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from django.db.models import QuerySet
from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    StringConstraints,
    TypeAdapter,
)
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

from core.repositories import (
    DEFAULT_PAGE_MAX_BYTES,
    MAX_OFFSET,
    offset_page,
    page_max_bytes,
    text_problem,
)
from core.repositories import DEFAULT_PAGE_SIZE as DEFAULT_LIMIT
from core.repositories import MAX_PAGE_SIZE as MAX_LIMIT
from core.repositories.validation import MAX_JSON_DEPTH

ItemT = TypeVar("ItemT")


def _refuse_unstorable(value: str) -> str:
    """``value``, unless a database could not store it as text (``text_problem``): a 422
    here rather than a refusal by one database only."""
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


def _refuse_unstorable_json(value: Any) -> Any:
    """``value`` (parsed JSON), unless a key or string anywhere in it is unstorable text
    (see ``_refuse_unstorable``) or a number is not finite (``NaN``, ``Infinity``: Python's
    parser reads them, JSON and PostgreSQL's jsonb do not).

    The message names where the bad part is (``tasks[1].name``), never what it is.
    """
    # An explicit stack rather than recursion: depth is bounded by the JSON parser already,
    # but a walk of its own must not be the thing that overflows.
    # Children are pushed in reverse so the first bad part in document order is reported.
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            _refuse_unstorable_at(item, where, "a string")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{_at(where)}a number must be finite (not NaN or Infinity)")
        elif isinstance(item, dict):
            for key in item:
                _refuse_unstorable_at(key, where, "a key")
            stack.extend(
                (child, f"{where}.{_short(key)}" if where else _short(key))
                for key, child in reversed(item.items())
            )
        elif isinstance(item, list):
            stack.extend((item[i], f"{where}[{i}]") for i in reversed(range(len(item))))
    return value


def _refuse_unstorable_at(text: str, where: str, what: str) -> None:
    try:
        _refuse_unstorable(text)
    except ValueError as error:
        raise ValueError(f"{_at(where)}{what} {error}") from None


def _at(where: str) -> str:
    return f"at {where}: " if where else ""


def _short(key: str) -> str:
    # Keys name the place in a message; a huge key must not make a huge message.
    return key if len(key) <= 40 else key[:37] + "..."


#: What stripping removes, and only that: Python's ``str.strip`` (Unicode's White_Space
#: and the separators U+001C-U+001F), which ``NonBlankText`` and the repositories'
#: ``require_text`` both use, so "blank" means one thing from the document to the database.
_BLANK = r"\t-\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: The JSON Schema pattern of ``Text``: no NUL. (A lone surrogate is refused too, but it is
#: no Unicode text: a JSON Schema string cannot hold one.) ECMA-262 and Python read it alike.
NO_NUL_PATTERN = r"^[^\u0000]*$"
#: The pattern of ``NonBlankText``: some character besides white space, and no NUL. Linear
#: for a backtracking engine: the leading white space is matched by one class only.
NOT_BLANK_PATTERN = rf"^[{_BLANK}]*[^\u0000{_BLANK}][^\u0000]*$"
#: The pattern of a text kept as sent but refused when blank (a chat message, a log chunk:
#: ``require_text``): something besides white space, and no NUL. (The same rule as
#: ``NOT_BLANK_PATTERN``, written apart: only a stripped text's lengths are restated.)
TEXT_NOT_BLANK_PATTERN = rf"^(?:[{_BLANK}])*[^\u0000{_BLANK}][^\u0000]*$"
#: The pattern of a text refused only when blank, NUL and all (a log chunk: what it cannot
#: store it escapes, ``core.text.storable_text``): something besides white space.
RAW_NOT_BLANK_PATTERN = rf"^[{_BLANK}]*[^{_BLANK}]"
#: What a ``OneLineText`` holds besides its edges, once stripped: no NUL, line break or tab.
_ONE_LINE_INSIDE = r"[^\u0000\t\n\r]"
#: The pattern of ``OneLineText``: ``NOT_BLANK_PATTERN`` whose text, once stripped, is one
#: line without tabs (white space around it, line breaks too, is stripped).
ONE_LINE_NOT_BLANK_PATTERN = (
    rf"^[{_BLANK}]*[^\u0000{_BLANK}](?:{_ONE_LINE_INSIDE}*[^\u0000{_BLANK}])?[{_BLANK}]*$"
)
#: What a name holds besides its edges, once stripped: no NUL and no line break (the
#: characters ``core.validators.LINE_BREAKS`` lists, which ``validate_one_line`` refuses).
_NAME_INSIDE = r"[^\u0000\n\r\u000b\u000c\u001c-\u001e\u0085\u2028\u2029]"
#: The pattern of ``NameText``: ``NOT_BLANK_PATTERN`` whose text, once stripped, is one line.
ONE_LINE_NAME_PATTERN = (
    rf"^[{_BLANK}]*[^\u0000{_BLANK}](?:{_NAME_INSIDE}*[^\u0000{_BLANK}])?[{_BLANK}]*$"
)


@dataclass(frozen=True)
class Documented:
    """Annotation metadata stating in the JSON Schema a rule a validator enforces (its
    ``pattern``, its ``description``), so the OpenAPI document says what the server
    accepts; validation itself is left to the validator, whose messages are clearer."""

    pattern: str | None = None
    format: str | None = None
    content_media_type: str | None = None
    description: str | None = None

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.format is not None:
            schema["format"] = self.format
        if self.content_media_type is not None:
            schema["contentMediaType"] = self.content_media_type
        if self.description is not None:
            schema.setdefault("description", self.description)
        return schema


#: An id or a filter value from a path or query string (no NUL, valid Unicode), so both
#: databases answer a lookup of a malformed id alike (422) instead of one refusing it.
Id = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_refuse_unstorable),
    Documented(pattern=NO_NUL_PATTERN),
]
#: Text from a client: any string a database can store (no NUL, valid Unicode).
Text = Annotated[str, AfterValidator(_refuse_unstorable), Documented(pattern=NO_NUL_PATTERN)]
#: A required name-like string: trimmed, at least one character, storable like ``Text``.
NonBlankText = Annotated[
    str,
    # Stripped as Python strips (pydantic's strip_whitespace keeps U+001C-U+001F), before
    # the length bounds count it.
    BeforeValidator(lambda value: value.strip() if isinstance(value, str) else value),
    StringConstraints(min_length=1),
    AfterValidator(_refuse_unstorable),
    Documented(pattern=NOT_BLANK_PATTERN),
]
#: A ``NonBlankText`` that is one line without tabs once stripped (a file path). The
#: repository refuses any other (a review comment's file path: 400 ``invalid_file_path``);
#: this states the rule in the document.
OneLineText = Annotated[NonBlankText, Documented(pattern=ONE_LINE_NOT_BLANK_PATTERN)]
#: A ``NonBlankText`` that is one line once stripped (a name or title): the model field's
#: ``validate_one_line`` refuses any other (400 ``validation_failed``); this states the
#: rule in the document.
NameText = Annotated[NonBlankText, Documented(pattern=ONE_LINE_NAME_PATTERN)]
#: What the document says of every free-form JSON value a client sends.
JSON_RULES = (
    f"No NUL character or lone surrogate in any key or string, no NaN or Infinity, and "
    f"nested at most {MAX_JSON_DEPTH} levels deep (400 `json_too_deep` beyond)."
)


class _NoNulKeys:
    """States that an object's keys hold no NUL (``propertyNames``)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["propertyNames"] = {"pattern": NO_NUL_PATTERN}
        return schema


_NoNulStr = Annotated[str, Field(pattern=NO_NUL_PATTERN)]
#: The document's ``JsonValue`` and ``JsonObject`` components: any JSON whose keys and
#: strings hold no NUL, at any depth (for the document only: validation stays with
#: ``_refuse_unstorable_json``, which also bounds the depth, stated in words).
JsonValueSchema = TypeAliasType(  # type: ignore[misc]
    "JsonValue",
    Union[  # noqa: UP007 (forward references cannot be joined with |)
        bool,
        int,
        float,
        _NoNulStr,
        list["JsonValue"],
        Annotated[dict[str, "JsonValue"], _NoNulKeys()],
        None,
    ],
)
JsonObjectSchema = TypeAliasType(  # type: ignore[misc]
    "JsonObject",
    Annotated[dict[str, JsonValueSchema], _NoNulKeys()],  # type: ignore[valid-type]
)


@dataclass(frozen=True)
class DocumentedAs:
    """Annotation metadata giving a value the JSON Schema of ``shape`` (a type used for the
    document only), where validation is a validator's."""

    shape: Any

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # A one-way anyOf rather than a bare $ref: a $ref with a default beside it is put
        # in an allOf, which openapi-spec-validator follows for ever into the recursion.
        return {"anyOf": [handler(TypeAdapter(self.shape).core_schema)]}


#: A JSON object from a client whose keys and strings, at any depth, are storable like
#: ``Text`` and whose numbers are finite, so a JSON column holds it alike on both databases.
JsonObject = Annotated[
    dict[str, Any],
    AfterValidator(_refuse_unstorable_json),
    DocumentedAs(JsonObjectSchema),
    Documented(description=JSON_RULES),
]
#: Any JSON value from a client, storable like ``JsonObject``'s (its fields' descriptions
#: say ``JSON_RULES``).
JsonValue = Annotated[Any, AfterValidator(_refuse_unstorable_json), DocumentedAs(JsonValueSchema)]


_NO_NUL_KEYS: JsonDict = {"propertyNames": {"pattern": NO_NUL_PATTERN}}


class TiptapMark(BaseModel):
    """A mark of a Tiptap node, as ``core.validators.validate_tiptap_document`` checks it:
    an object with a string ``type``; anything else it holds is free JSON."""

    model_config = ConfigDict(title="TiptapMark", extra="allow", json_schema_extra=_NO_NUL_KEYS)
    __pydantic_extra__: dict[str, JsonValueSchema]  # type: ignore[valid-type]

    type: _NoNulStr


class TiptapNode(BaseModel):
    """A Tiptap (ProseMirror) node, as the validator checks it: a string ``type``; a
    ``text`` string when the type is ``text``; typed ``marks``; ``attrs`` an object or
    null; ``content`` a list of nodes; anything else free JSON."""

    model_config = ConfigDict(
        title="TiptapNode",
        extra="allow",
        json_schema_extra={
            **_NO_NUL_KEYS,
            "if": {"properties": {"type": {"const": "text"}}, "required": ["type"]},
            "then": {
                "properties": {"text": {"type": "string", "pattern": NO_NUL_PATTERN}},
                "required": ["text"],
            },
        },
    )
    __pydantic_extra__: dict[str, JsonValueSchema]  # type: ignore[valid-type]

    type: _NoNulStr
    marks: list[TiptapMark] = []
    attrs: Annotated[dict[str, JsonValueSchema], _NoNulKeys()] | None = None  # type: ignore[valid-type]
    content: list["TiptapNode"] = []


class TiptapDoc(TiptapNode):
    """The root of a Tiptap document: a node whose type is ``doc``."""

    model_config = ConfigDict(title="TiptapDoc")

    type: Literal["doc"]


#: A Tiptap document from a client, validated as ``JsonObject`` here and as a document by
#: the model (``validate_tiptap_document``); the document states that shape in full.
TiptapDocument = Annotated[
    dict[str, Any],
    AfterValidator(_refuse_unstorable_json),
    DocumentedAs(TiptapDoc),
]


def _integral_float_to_int(value: Any) -> Any:
    """An integral float (``198.0``, an integer to JSON Schema) as the int it is; any other
    value as given, for strict validation to judge (``true``, ``"12"``, ``12.5`` refused)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


#: A 32-bit integer (what the databases store) given as a JSON number: ``12``, or ``12.0``
#: (JSON Schema counts it an integer), not ``true``, ``"12"`` or ``12.5``. (The validator
#: comes last so the bounds stay in the document as ``minimum`` and ``maximum``.)
Int32 = Annotated[
    int, Field(strict=True, ge=-(2**31), le=2**31 - 1), BeforeValidator(_integral_float_to_int)
]
#: A positive ``Int32`` (a line or session number).
#: RFC 3339's ``date-time`` (what the document's ``format: date-time`` names): a date, a
#: time with seconds, and a zone.
_RFC3339_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def _refuse_other_than_rfc3339(value: Any) -> Any:
    """``value`` when it is RFC 3339 text; pydantic would otherwise read a number (``0``,
    ``"0"``) as seconds since 1970, or a date without a time, which the document
    refuses."""
    if isinstance(value, str) and _RFC3339_DATE_TIME.fullmatch(value):
        return value
    raise ValueError("must be a date and time with its zone, as RFC 3339 text")


#: A date and time with its zone, written as RFC 3339 text (``2026-05-01T12:00:00Z``)
#: and nothing else, as ``format: date-time`` says.
DateTimeText = Annotated[AwareDatetime, BeforeValidator(_refuse_other_than_rfc3339)]


PositiveInt32 = Annotated[
    int, Field(strict=True, ge=1, le=2**31 - 1), BeforeValidator(_integral_float_to_int)
]
#: A place in an order (a task's ``order``, a page's or an account's ``sort_order``): an
#: ``Int32`` from 0, as the model fields' validators require.
OrderInt32 = Annotated[
    int, Field(strict=True, ge=0, le=2**31 - 1), BeforeValidator(_integral_float_to_int)
]


def _stripped_length_pattern(
    min_length: int, max_length: int | None, inside: str = r"[^\u0000]"
) -> str:
    """``NOT_BLANK_PATTERN`` (or, with ``inside``, another stripped text's pattern) for a
    length counted once stripped (as pydantic counts it): white space around a run of
    ``min_length`` to ``max_length`` characters that starts and ends with something else,
    and holds ``inside`` between."""
    edge = f"[^\\u0000{_BLANK}]"
    if max_length == 1:
        core = edge
    else:
        low = max(0, min_length - 2)
        high = "" if max_length is None else str(max_length - 2)
        core = f"{edge}(?:{inside}{{{low},{high}}}{edge})" + ("" if min_length >= 2 else "?")
    return f"^[{_BLANK}]*{core}[{_BLANK}]*$"


#: The patterns of the stripped texts, each with what its text holds between its edges.
_STRIPPED_PATTERNS = {
    NOT_BLANK_PATTERN: r"[^\u0000]",
    ONE_LINE_NOT_BLANK_PATTERN: _ONE_LINE_INSIDE,
    ONE_LINE_NAME_PATTERN: _NAME_INSIDE,
}


#: The longest length ``_state_stripped_lengths`` states in a pattern.
_LONGEST_PATTERN_LENGTH = 10_000


def _state_stripped_lengths(schema: JsonSchemaValue) -> None:
    """Restate the length bounds of the stripped strings of ``schema`` (an object's JSON
    Schema, changed in place) in their patterns: the server counts a name's length once
    stripped, where ``maxLength`` would count the white space around it too."""
    for prop in schema.get("properties", {}).values():
        for candidate in [prop, *prop.get("anyOf", [])]:
            inside = _STRIPPED_PATTERNS.get(candidate.get("pattern", ""))
            if inside is None:
                continue
            if candidate.get("maxLength", 0) > _LONGEST_PATTERN_LENGTH:
                # A pattern counting a million characters is more than generators and
                # validators handle: the bound stays on the text as sent (what the
                # server allows beyond it, white space around the longest text, no
                # client needs).
                continue
            low = candidate.pop("minLength", 1)
            high = candidate.pop("maxLength", None)
            candidate["pattern"] = _stripped_length_pattern(low, high, inside)


class InputSchema(Schema):
    """Base of request bodies: an unknown field is a 422, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = super().__get_pydantic_json_schema__(core_schema, handler)
        _state_stripped_lengths(handler.resolve_ref_schema(schema))
        return schema


class FromRecord(BaseModel):
    """Base of output schemas read straight from a model's attributes.

    Plain pydantic, validated from attributes in its core: several times faster per item
    than a Ninja ``Schema`` (which wraps every object in a getter for resolvers), which
    matters for lists of hundreds. Schemas that need ``resolve_*`` stay ``Schema``.
    """

    model_config = ConfigDict(from_attributes=True)


class ErrorOut(Schema):
    """The body of every error the API answers, whatever its status."""

    code: str = Field(description="Stable snake_case code; tools branch on it.")
    message: str = Field(description="Human-readable explanation; may change between versions.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Structured context, e.g. field errors or ids."
    )
    deprecated_codes: list[str] = Field(
        default_factory=list,
        description=(
            "Only while a renamed code keeps its former spelling (one release): the codes "
            "this refusal answered before. Branch on `code`; see docs/errors.md."
        ),
    )


#: The code answering a refused value of a request field that has one of its own: the
#: query parameter, or the top-level field of a JSON body, of this name. The services
#: refuse the same values with the same codes, so a refusal has one code whether the
#: schema or a service meets it (``cw_project.errors`` answers the schema's, and the
#: OpenAPI document states each on its field as ``x-error-code``; docs/api.md lists them).
FIELD_CODES: dict[str, str] = {
    "after": "invalid_cursor",
    "category": "invalid_category",
    "email": "invalid_email",
    "execution_mode": "invalid_execution_mode",
    "kind": "invalid_kind",
    "limit": "invalid_limit",
    "line_type": "invalid_line_type",
    "mode": "invalid_mode",
    "offset": "invalid_offset",
    "priority": "invalid_priority",
    "project_ids": "invalid_project_ids",
    "recipient_type": "invalid_recipient_type",
    "role": "invalid_role",
    "sender_type": "invalid_sender_type",
    "session_number": "invalid_session_number",
    "status": "invalid_status",
    "target_type": "invalid_target_type",
    "type": "invalid_type",
    "wait": "invalid_wait",
}
#: The code answering a required text field left out, null or blank (any other refusal
#: of it, such as a text too long, has no code of its own).
BLANK_FIELD_CODES: dict[str, str] = {
    field: f"empty_{field}"
    for field in ("answer", "author", "body", "content", "file_path", "name", "question", "title")
}


def field_refusal_code(
    field: str | None, problem: str, value: Any, *, nested: bool = False
) -> str | None:
    """The code of a schema's refusal (pydantic's error type ``problem``) of ``value`` for
    the request field ``field`` (``nested``: of a part of the field's value, such as an
    item of a list); None when the field has no code for it (an unknown field, a
    required one left out that is not text), which the API answers as 422
    ``validation_error``."""
    if field is None or problem == "extra_forbidden":
        return None
    blank = BLANK_FIELD_CODES.get(field)
    if (
        blank is not None
        and not nested
        and (
            problem == "missing" or value is None or (isinstance(value, str) and not value.strip())
        )
    ):
        return blank
    if problem == "missing":
        return None
    return FIELD_CODES.get(field)


#: Statuses any authenticated operation may answer; spread into ``response=``.
AUTH_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 403: ErrorOut}
#: Every status an operation on a resource may refuse with, besides its success.
ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    413: ErrorOut,
    422: ErrorOut,
    **AUTH_ERRORS,
}


#: The byte cap of a keyset page of long texts, as the OpenAPI document states it (the
#: setting's default; a deployment may set another).
PAGE_BYTES = f"`CW_API_PAGE_MAX_BYTES` bytes ({DEFAULT_PAGE_MAX_BYTES:,} by default)"


class PageParams(Schema):
    """Query parameters of every list: ``?limit=&offset=``."""

    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT})."
    )
    offset: int = Field(
        0,
        ge=0,
        le=MAX_OFFSET,
        description=f"Items to skip before the page starts (at most {MAX_OFFSET}).",
    )


class Page(Schema, Generic[ItemT]):
    """One page of a list, with the total number of items across all pages. A page holds
    at most `limit` items and at most CW_API_PAGE_MAX_BYTES bytes of its records' long
    texts (descriptions, contents, bodies, JSON documents; at least one item): a page of
    long texts may hold fewer items than `limit` before the end of the list. The next page
    starts at `next_offset`, not at `offset + limit`."""

    items: list[ItemT] = Field(
        description=(
            f"At most `limit` items, and at most {PAGE_BYTES} of their records' long texts "
            "(descriptions, contents, bodies, JSON documents), always at least one: a page "
            "of long texts may hold fewer than `limit` items before the list's end. The "
            "next page starts at `next_offset`."
        )
    )
    total: int = Field(description="How many items the list holds across all pages.")
    limit: int = Field(description="The most items this page could hold (as asked).")
    offset: int = Field(description="How many items come before this page's first.")
    next_offset: int | None = Field(
        description=(
            "The offset of the next page: this page's offset plus its items, or null when "
            "this page ends the list."
        )
    )


def paginate(queryset: QuerySet, params: PageParams) -> dict[str, Any]:
    """One page of ``queryset`` as a ``Page`` body: the repositories' ``offset_page`` (two
    queries whatever the page size; pk order when unordered). Related rows the item
    schema reads must be prefetched by the caller."""
    page = offset_page(
        queryset, limit=params.limit, offset=params.offset, max_bytes=page_max_bytes()
    )
    return page_of(page.items, total=page.total, params=params)


def page_of(items: list[Any], *, total: int, params: PageParams) -> dict[str, Any]:
    """A ``Page`` body from items already fetched (e.g. by a repository) and their total."""
    after = params.offset + len(items)
    return {
        "items": items,
        "total": total,
        "limit": params.limit,
        "offset": params.offset,
        "next_offset": after if items and after < total else None,
    }
