"""Property-based fuzzing of the JSON API: no input gets a 5xx response."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.processes import Stack

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
field_names = st.sampled_from(
    [
        "name",
        "email",
        "password",
        "remember",
        "current_password",
        "new_password",
        "$where",
    ]
)
bodies = st.one_of(
    st.dictionaries(field_names, json_values, max_size=5),
    json_values,
)
routes = st.sampled_from(
    ["/api/v1/signup", "/api/v1/login", "/api/v1/password", "/api/v1/logout"]
)


def test_json_api_never_answers_5xx(stack: Stack) -> None:
    statuses: list[int] = []

    async def post(route: str, body: object) -> int:
        async with aiohttp.ClientSession() as client:
            async with client.post(
                stack.url() + route,
                data=json.dumps(body),
                headers={"Content-Type": "application/json"},
            ) as response:
                await response.read()
                return response.status

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(route=routes, body=bodies)
    def check(route: str, body: object) -> None:
        status = asyncio.run(post(route, body))
        statuses.append(status)
        assert status < 500, (route, body, status)

    check()

    assert len(statuses) == 150
