"""The local stack script: one command starts everything, and a crash loses nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.flows import COOKIE, api_signup, me_status
from tests.support.processes import ARTIFACTS, ROOT, free_port, wait_for_ready

RUN_SCRIPT = ROOT / "deploy" / "local" / "run.sh"


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class LocalStack:
    """deploy/local/run.sh in its own process group, on free ports."""

    def __init__(self, var_dir: Path) -> None:
        self.ports = {
            name: free_port()
            for name in ("ferretdb", "redis", "identity", "session", "gateway")
        }
        self.var_dir = var_dir
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("MFLIX_") and key not in {"MONGODB_URL", "REDIS_URL"}
        }
        environment.update(
            MFLIX_VAR_DIR=str(self.var_dir),
            FERRETDB_PORT=str(self.ports["ferretdb"]),
            REDIS_PORT=str(self.ports["redis"]),
            MFLIX_IDENTITY_PORT=str(self.ports["identity"]),
            MFLIX_IDENTITY_BCRYPT_COST="4",
            MFLIX_SESSION_PORT=str(self.ports["session"]),
            MFLIX_GATEWAY_PORT=str(self.ports["gateway"]),
            MFLIX_GATEWAY_PUBLIC_URL=self.url("gateway"),
            MFLIX_GATEWAY_IDENTITY_URL=self.url("identity"),
            MFLIX_GATEWAY_SESSION_URL=self.url("session"),
        )
        return environment

    def url(self, service: str = "gateway") -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self) -> None:
        log = open(ARTIFACTS / "logs" / "local-stack.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["bash", str(RUN_SCRIPT)],
            cwd=ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_ready(self.url() + "/readyz", timeout=60)

    def listening_ports(self, attempts: int = 50) -> list[str]:
        """Return the services still listening, waiting up to 5 s for them to go."""
        listening: list[str] = []
        for _ in range(attempts):
            listening = [name for name, port in self.ports.items() if port_open(port)]
            if not listening:
                break
            time.sleep(0.1)
        return listening

    def kill_group(self, sig: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[LocalStack]:
    if os.environ.get("MONGODB_URL") or os.environ.get("REDIS_URL"):
        pytest.skip("the local stack script starts its own FerretDB and Redis")
    (ARTIFACTS / "logs").mkdir(parents=True, exist_ok=True)
    stack = LocalStack(tmp_path / "var")
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.kill_group(signal.SIGKILL)


async def test_cookie_survives_sigkill_of_whole_stack(
    local_stack: LocalStack, http: aiohttp.ClientSession, email: str
) -> None:
    local_stack.start()
    signup = await api_signup(http, local_stack, email)
    token = signup.cookies[COOKIE].value

    local_stack.kill_group(signal.SIGKILL)
    survivors = local_stack.listening_ports()
    local_stack.start()

    async with aiohttp.ClientSession(cookies={COOKIE: token}) as same_browser:
        status = await me_status(same_browser, local_stack)
    assert signup.status == 201
    assert survivors == []
    assert status == 200


def test_sigterm_stops_every_process(local_stack: LocalStack) -> None:
    local_stack.start()

    local_stack.kill_group(signal.SIGTERM)
    leftovers = subprocess.run(
        ["pgrep", "-g", str(local_stack.process.pid if local_stack.process else 0)],
        capture_output=True,
        check=False,
    )

    assert local_stack.process is not None
    assert local_stack.process.returncode is not None
    assert leftovers.stdout == b""
