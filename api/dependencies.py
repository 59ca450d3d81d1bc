"""What routes receive through FastAPI dependencies: the application's context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.context import ApiContext


def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.context
    return found


Context = Annotated[ApiContext, Depends(context)]
