"""Internal HTTP API of the session service.

Tokens travel in request bodies, never in paths, so no access log or proxy
log records them.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.common.validation import read_json, reject_unencodable

from .sessions import ClientInfo, RevokeReason, Sessions, public_session

SESSIONS = web.AppKey("sessions", Sessions)

Text = Annotated[str, AfterValidator(reject_unencodable)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SessionUser(_Request):
    id: Text = Field(min_length=1, max_length=64)
    name: Text = Field(max_length=200)
    email: Text = Field(max_length=400)


class CreateRequest(_Request):
    user: SessionUser
    remember: bool = False
    user_agent: Text = Field("", max_length=1024)
    ip: Text | None = Field(None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)
    previous_token: Text | None = Field(None, max_length=128)


class TokenRequest(_Request):
    token: Text = Field(max_length=128)


class SaveRequest(TokenRequest):
    data: dict[str, Any]


class RevokeRequest(TokenRequest):
    # Strict mode accepts only enum instances; JSON carries the value.
    reason: RevokeReason = Field(RevokeReason.LOGOUT, strict=False)


class RevokeAllRequest(_Request):
    keep_session_id: Text | None = Field(None, max_length=64)


def _session_reply(
    token: str | None, document: dict[str, Any], status: int
) -> web.Response:
    body: dict[str, Any] = {"session": public_session(document)}
    if token is not None:
        body["token"] = token
    return web.json_response(body, status=status)


async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, CreateRequest)
    token, document = await request.app[SESSIONS].create(
        user=body.user.model_dump(),
        remember=body.remember,
        client=ClientInfo(user_agent=body.user_agent, ip=body.ip),
        data=body.data,
        previous_token=body.previous_token,
    )
    return _session_reply(token, document, 201)


async def resolve_session(request: web.Request) -> web.Response:
    body = await read_json(request, TokenRequest)
    document = await request.app[SESSIONS].resolve(body.token)
    return _session_reply(None, document, 200)


async def save_session(request: web.Request) -> web.Response:
    body = await read_json(request, SaveRequest)
    document = await request.app[SESSIONS].save(body.token, body.data)
    return _session_reply(None, document, 200)


async def rotate_session(request: web.Request) -> web.Response:
    body = await read_json(request, TokenRequest)
    token, document = await request.app[SESSIONS].rotate(body.token)
    return _session_reply(token, document, 201)


async def revoke_session(request: web.Request) -> web.Response:
    body = await read_json(request, RevokeRequest)
    await request.app[SESSIONS].revoke(body.token, body.reason)
    return web.Response(status=204)


async def list_user_sessions(request: web.Request) -> web.Response:
    documents = await request.app[SESSIONS].list_for_user(request.match_info["user_id"])
    return web.json_response({"sessions": [public_session(d) for d in documents]})


async def revoke_user_session(request: web.Request) -> web.Response:
    await request.app[SESSIONS].revoke_for_user_by_id(
        request.match_info["user_id"], request.match_info["session_id"]
    )
    return web.Response(status=204)


async def revoke_user_sessions(request: web.Request) -> web.Response:
    body = await read_json(request, RevokeAllRequest)
    revoked = await request.app[SESSIONS].revoke_all_for_user(
        request.match_info["user_id"],
        RevokeReason.REVOKED_BY_USER,
        keep_session_id=body.keep_session_id,
    )
    return web.json_response({"revoked": revoked})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/internal/v1/sessions", create_session)
    app.router.add_post("/internal/v1/sessions/resolve", resolve_session)
    app.router.add_post("/internal/v1/sessions/save", save_session)
    app.router.add_post("/internal/v1/sessions/rotate", rotate_session)
    app.router.add_post("/internal/v1/sessions/revoke", revoke_session)
    app.router.add_get("/internal/v1/users/{user_id}/sessions", list_user_sessions)
    app.router.add_delete(
        "/internal/v1/users/{user_id}/sessions/{session_id}", revoke_user_session
    )
    app.router.add_post(
        "/internal/v1/users/{user_id}/sessions/revoke", revoke_user_sessions
    )
