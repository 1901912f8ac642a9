"""Input, output and patch schemas of the agents API (accounts).

Secrets (``config_json``, ``credentials``) are write-only: no output schema has them
except ``AccountClaimOut``, which only the claim endpoint returns.
"""

from datetime import datetime
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AwareDatetime

from core.schemas import InputSchema, Int32, NonBlankText, Text

Email = Annotated[NonBlankText, Field(min_length=3, max_length=320)]

#: The default of a patch field that may be left out but never sent as ``null``: the
#: field stays required-when-sent (not Optional), and a patch applies only the fields set.
NOT_SENT: Any = None


class AccountIn(InputSchema):
    email: Email
    provider: NonBlankText = Field("claude", max_length=64)
    config_json: Text | None = Field(
        None, description="Serialized .claude.json (write-only; stored encrypted)."
    )
    credentials: Text | None = Field(
        None, description="Serialized .credentials.json (write-only; stored encrypted)."
    )
    sort_order: Int32 = 0


class AccountPatch(InputSchema):
    """Only the fields sent change; send ``null`` for a secret to clear it."""

    email: Email = NOT_SENT
    provider: NonBlankText = Field(NOT_SENT, max_length=64)
    config_json: Text | None = None
    credentials: Text | None = None
    sort_order: Int32 = NOT_SENT


class AccountOut(Schema):
    id: str
    email: str
    provider: str
    has_config: bool = Field(description="Whether config_json is set (never its value).")
    has_credentials: bool = Field(description="Whether credentials are set (never their value).")
    is_exhausted: bool
    exhausted_until: datetime | None
    last_used_at: datetime | None
    sort_order: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_has_config(obj) -> bool:
        return _is_set(obj, "config_json", "config_is_set")

    @staticmethod
    def resolve_has_credentials(obj) -> bool:
        return _is_set(obj, "credentials", "credentials_are_set")


def _is_set(account, field: str, annotation: str) -> bool:
    """Whether a secret is set, without loading it.

    A value set in this request (or loaded by a claim) is in the instance's ``__dict__``;
    otherwise the repository's queryset annotated the answer and left the column unread.
    """
    if field in account.__dict__:
        return account.__dict__[field] is not None
    return getattr(account, annotation)


class AccountClaimOut(AccountOut):
    """A claimed account, with the secrets the agent needs to run under it."""

    config_json: str | None
    credentials: str | None


class AccountClaimIn(InputSchema):
    provider: NonBlankText = Field("claude", max_length=64)


class AccountExhaustIn(InputSchema):
    until: AwareDatetime = Field(description="When the account may be used again (with zone).")


class ReleasedOut(Schema):
    released: int
