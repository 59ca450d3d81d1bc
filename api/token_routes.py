"""Token routes: who a token is (any role); make one (shown once), list them, revoke one
(admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from api.auth import ADMIN, Admin, Viewer, gate
from api.dependencies import Context
from api.token_commands import TokenCommands
from api.token_schemas import TokenCreate, TokenCreatedOut, TokenList, TokenOut, WhoAmI
from projector import api_reads

router = APIRouter(tags=["tokens"])


@router.get("/api/whoami")
def whoami(caller: Viewer) -> WhoAmI:
    """The name and role of the token sent (``anonymous`` in open mode): how the dashboard
    checks a token when someone signs in with it."""
    return WhoAmI(name=caller.name, role=caller.role)


@router.post("/api/tokens", status_code=201)
def create_token(
    body: TokenCreate, request: Request, response: Response, ctx: Context, caller: Admin
) -> TokenCreatedOut:
    """Make a token. The answer is the only place the token is ever shown."""
    made = TokenCommands(ctx, caller).create(body.name, body.role, body.expires_at)
    gate(request).token_made()
    response.headers["Cache-Control"] = "no-store"
    return TokenCreatedOut(
        name=made.name, role=body.role, token=made.token, expires_at=made.expires_at
    )


@router.get("/api/tokens", dependencies=[ADMIN])
def list_tokens(ctx: Context) -> TokenList:
    """Every token by name, revoked and expired ones too; never the token or its hash."""
    now = ctx.clock()
    with Session(ctx.engine) as session:
        rows = api_reads.list_tokens(session)
    tokens = [
        TokenOut(
            name=r.name,
            role=r.role,
            created_at=r.created_at,
            created_by=r.created_by,
            expires_at=r.expires_at,
            revoked_at=r.revoked_at,
            active=r.valid_at(now),
        )
        for r in rows
    ]
    return TokenList(tokens=tokens, total=len(tokens))


@router.delete("/api/tokens/{name}")
def revoke_token(name: str, ctx: Context, caller: Admin) -> dict[str, bool]:
    """Revoke a token: it stops working within about a second, on every API process."""
    TokenCommands(ctx, caller).revoke(name)
    return {"revoked": True}
