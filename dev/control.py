"""The HTTP control API every double in dev/ shares: checked JSON bodies and one error shape."""

from __future__ import annotations

from typing import Any, Optional

from aiohttp import web
from pydantic import BaseModel, ValidationError

from web.errors import json_error

__all__ = ["BadBody", "control_errors", "read_body"]


class BadBody(Exception):
    """A control request's body its model refuses (answered 400 by `control_errors`)."""


async def read_body(request: web.Request, model: type[BaseModel], empty: Optional[bytes] = None) -> Any:
    """The body as a `model`; `empty`: what an empty body stands for (None: it is refused too)."""
    try:
        return model.model_validate_json(await request.read() or (empty or b""))
    except ValidationError as exc:
        raise BadBody(f"{model.__name__.lstrip('_')}: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())) from None


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except BadBody as exc:
        return json_error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_error(exc.status, exc.reason)
