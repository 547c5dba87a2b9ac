"""The request limits of this deployment, as a route dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.limits import RequestLimits


async def get_request_limits(request: Request) -> RequestLimits:
    limits: RequestLimits = request.app.state.request_limits
    return limits


RequestLimitsDep = Annotated[RequestLimits, Depends(get_request_limits)]
