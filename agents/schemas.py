"""Input, output and patch schemas of the agents API (accounts).

Secrets (``config_json``, ``credentials``) are write-only: no output schema has them
except ``AccountClaimOut``, which only the claim endpoint returns.
"""

from datetime import datetime

from ninja import Field, Schema
from pydantic import AwareDatetime

from core.schemas import InputSchema, Int32, NonBlankText, Text


class AccountIn(InputSchema):
    email: NonBlankText = Field(min_length=3, max_length=320)
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

    email: NonBlankText = Field(None, min_length=3, max_length=320)
    provider: NonBlankText = Field(None, max_length=64)
    config_json: Text | None = None
    credentials: Text | None = None
    sort_order: Int32 = None


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

    # Lists annotate these (AccountRepository.without_secrets) so that no secret is
    # read, let alone decrypted, to say whether it is set.
    @staticmethod
    def resolve_has_config(obj) -> bool:
        if hasattr(obj, "config_is_set"):
            return obj.config_is_set
        return obj.config_json is not None

    @staticmethod
    def resolve_has_credentials(obj) -> bool:
        if hasattr(obj, "credentials_are_set"):
            return obj.credentials_are_set
        return obj.credentials is not None


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
