"""What routes receive through FastAPI dependencies: the application's context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.context import ApiContext


async def context(request: Request) -> ApiContext:
    # async: FastAPI runs a plain ``def`` dependency on a worker thread, a hop (and a
    # GIL hand-over) per request for reading one attribute.
    found: ApiContext = request.app.state.context
    return found


Context = Annotated[ApiContext, Depends(context)]
