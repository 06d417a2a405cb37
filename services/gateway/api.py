"""The public JSON API, for scripts and single-page clients."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.common.errors import NotFound
from services.common.validation import read_json, reject_unencodable

from . import auth
from .auth import log_in, log_out, require_user, sign_up
from .cache import CACHE
from .clients import SESSIONS, is_session_id
from .csrf import cross_site
from .errors import CrossSiteRequest

logger = logging.getLogger("mflix.gateway.api")

Text = Annotated[str, AfterValidator(reject_unencodable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SignupBody(_Body):
    name: Text = Field(max_length=100)
    email: Text = Field(max_length=320)
    password: Text = Field(max_length=1024)


class LoginBody(_Body):
    email: Text = Field(max_length=320)
    password: Text = Field(max_length=1024)
    remember: bool = False


class PasswordBody(_Body):
    current_password: Text = Field(max_length=1024)
    new_password: Text = Field(max_length=1024)


def reject_cross_site(request: web.Request) -> None:
    if cross_site(request):
        logger.warning("cross-site API call rejected")
        raise CrossSiteRequest()


def session_view(record: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "created_at",
        "last_seen_at",
        "idle_expires_at",
        "absolute_expires_at",
    )
    view = {key: record[key] for key in keys}
    view["remember"] = record.get("remember", False)
    return view


async def signup(request: web.Request) -> web.Response:
    reject_cross_site(request)
    body = await read_json(request, SignupBody)
    user = await sign_up(
        request, name=body.name, email=body.email, password=body.password
    )
    return web.json_response({"user": user}, status=201)


async def login(request: web.Request) -> web.Response:
    reject_cross_site(request)
    body = await read_json(request, LoginBody)
    user = await log_in(
        request, email=body.email, password=body.password, remember=body.remember
    )
    return web.json_response({"user": user})


async def logout(request: web.Request) -> web.Response:
    reject_cross_site(request)
    await log_out(request)
    response = web.Response(status=204)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


async def me(request: web.Request) -> web.Response:
    _session, user, record = await require_user(request)
    return web.json_response({"user": user, "session": session_view(record)})


async def list_sessions(request: web.Request) -> web.Response:
    _session, user, record = await require_user(request)
    reply = await request.app[SESSIONS].list_for_user(user["id"])
    sessions = []
    for item in reply.body.get("sessions", []):
        view = session_view(item)
        view.update(
            user_agent=item.get("user_agent", ""),
            ip=item.get("ip"),
            current=item["id"] == record["id"],
        )
        sessions.append(view)
    return web.json_response({"sessions": sessions})


async def delete_session(request: web.Request) -> web.Response:
    reject_cross_site(request)
    session, user, record = await require_user(request)
    session_id = request.match_info["session_id"]
    if not is_session_id(session_id):
        raise NotFound("The session was not found.")
    if session_id == record["id"]:
        await log_out(request)
        return web.Response(status=204)
    reply = await request.app[SESSIONS].revoke_for_user(user["id"], session_id)
    if reply.status == 404:
        raise NotFound("The session was not found.")
    request.app[CACHE].drop_session(session_id)
    return web.Response(status=204)


async def change_password(request: web.Request) -> web.Response:
    reject_cross_site(request)
    _session, user, record = await require_user(request)
    body = await read_json(request, PasswordBody)
    await auth.change_password(
        request, user, record, current=body.current_password, new=body.new_password
    )
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/signup", signup)
    app.router.add_post("/api/v1/login", login)
    app.router.add_post("/api/v1/logout", logout)
    app.router.add_get("/api/v1/me", me)
    app.router.add_get("/api/v1/sessions", list_sessions)
    app.router.add_delete("/api/v1/sessions/{session_id}", delete_session)
    app.router.add_post("/api/v1/password", change_password)
