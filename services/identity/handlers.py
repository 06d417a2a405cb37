"""Internal HTTP API of the identity service."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.common.validation import (
    read_json,
    reject_control_characters,
    reject_unencodable,
)

from .activity import Activity
from .users import Users, public_user

USERS = web.AppKey("users", Users)
ACTIVITY = web.AppKey("activity", Activity)

Text = Annotated[str, AfterValidator(reject_unencodable)]
Name = Annotated[Text, AfterValidator(reject_control_characters)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RegisterRequest(_Request):
    name: Name = Field(max_length=100)
    email: Name = Field(max_length=320)
    password: Text = Field(max_length=1024)
    ip: Name | None = Field(None, max_length=64)


class VerifyRequest(_Request):
    email: Text = Field(max_length=320)
    password: Text = Field(max_length=1024)
    ip: Name | None = Field(None, max_length=64)


class PasswordChangeRequest(_Request):
    current_password: Text = Field(max_length=1024)
    new_password: Text = Field(max_length=1024)
    keep_session_id: str | None = Field(None, max_length=64)


async def register(request: web.Request) -> web.Response:
    body = await read_json(request, RegisterRequest)
    user = await request.app[USERS].register(
        name=body.name, email=body.email, password=body.password, ip=body.ip
    )
    return web.json_response({"user": public_user(user)}, status=201)


async def verify_credentials(request: web.Request) -> web.Response:
    body = await read_json(request, VerifyRequest)
    user = await request.app[USERS].verify_credentials(
        email=body.email, password=body.password, ip=body.ip
    )
    return web.json_response({"user": public_user(user)})


async def get_user(request: web.Request) -> web.Response:
    user = await request.app[USERS].get(request.match_info["user_id"])
    return web.json_response({"user": public_user(user)})


async def change_password(request: web.Request) -> web.Response:
    body = await read_json(request, PasswordChangeRequest)
    user = await request.app[USERS].change_password(
        request.match_info["user_id"],
        current_password=body.current_password,
        new_password=body.new_password,
        keep_session_id=body.keep_session_id,
    )
    return web.json_response({"user": public_user(user)})


async def recent_activity(request: web.Request) -> web.Response:
    user_id = request.match_info["user_id"]
    await request.app[USERS].get(user_id)
    entries = await request.app[ACTIVITY].recent(user_id)
    return web.json_response({"activity": entries})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/internal/v1/users", register)
    app.router.add_post("/internal/v1/credentials/verify", verify_credentials)
    app.router.add_get("/internal/v1/users/{user_id}", get_user)
    app.router.add_post("/internal/v1/users/{user_id}/password", change_password)
    app.router.add_get("/internal/v1/users/{user_id}/activity", recent_activity)
