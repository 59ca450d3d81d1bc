"""Request and response bodies of the token routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import UtcDatetime
from chronolog.tokens import NAME_PATTERN

RoleField = Literal["viewer", "operator", "admin"]
TokenName = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN.pattern)]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TokenName
    role: RoleField
    expires_at: UtcDatetime | None = Field(
        default=None, description="When the token stops working (UTC if no offset); never if absent"
    )


class TokenCreatedOut(BaseModel):
    """The only answer that ever shows the token: keep it, it cannot be shown again."""

    name: str
    role: RoleField
    token: str
    expires_at: datetime | None


class WhoAmI(BaseModel):
    name: str  # the token's name; "anonymous" in open mode
    role: str


class TokenOut(BaseModel):
    name: str
    role: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool  # neither revoked nor expired


class TokenList(BaseModel):
    tokens: list[TokenOut]
    total: int
