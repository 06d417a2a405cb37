"""Real server processes for the tests: FerretDB, Redis and the three services."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
FERRETDB = ROOT / ".tools" / "bin" / "ferretdb"
SERVICES = ("identity", "session", "gateway")
SERVICE_TOKEN = "test-service-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_for_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last_error = error
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last_error!r}")


def with_database(url: str, name: str) -> str:
    """Return a MongoDB URL that names ``name`` as its default database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def ferretdb_command(directory: Path, port: int) -> list[str]:
    """Return FerretDB's command line: SQLite data in ``directory``, no telemetry."""
    if not FERRETDB.exists():
        raise RuntimeError(
            f"{FERRETDB} is missing: run deploy/local/install-ferretdb.sh"
        )
    return [
        str(FERRETDB),
        "--handler=sqlite",
        f"--sqlite-url=file:{directory}/",
        f"--state-dir={directory}",
        f"--listen-addr=127.0.0.1:{port}",
        "--telemetry=disable",
        "--debug-addr=-",
        "--log-level=warn",
    ]


def redis_command(directory: Path, port: int) -> list[str]:
    """Return redis-server's command line, with the append-only file on."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: apt-get install redis-server")
    return [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(directory),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--loglevel",
        "warning",
    ]


def start_ferretdb(
    directory: Path, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = launch_server(
        ferretdb_command(directory, port), directory / "ferretdb.log", port
    )
    return process, f"mongodb://127.0.0.1:{port}/mflix"


def start_redis(
    directory: Path, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = launch_server(
        redis_command(directory, port), directory / "redis.log", port
    )
    return process, f"redis://127.0.0.1:{port}/0"


def launch_server(
    command: list[str], log_path: Path, port: int
) -> subprocess.Popen[bytes]:
    """Start a server and wait for its port; stop it again if it never listens."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
    except TimeoutError:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Stack:
    """The three services on free ports, sharing one database and stream prefix."""

    mongodb_url: str
    redis_url: str
    settings: dict[str, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.database = self.name
        self.ports = {service: free_port() for service in SERVICES}
        self.log_dir = ARTIFACTS / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def url(self, service: str = "gateway") -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def environment(self) -> dict[str, str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("MFLIX_") and key not in {"MONGODB_URL", "REDIS_URL"}
        }
        environment.update(
            MONGODB_URL=with_database(self.mongodb_url, self.database),
            REDIS_URL=self.redis_url,
            MFLIX_SERVICE_TOKEN=SERVICE_TOKEN,
            MFLIX_STREAM_PREFIX=self.name,
            MFLIX_LOG_LEVEL="INFO",
            MFLIX_IDENTITY_PORT=str(self.ports["identity"]),
            MFLIX_IDENTITY_BCRYPT_COST="4",
            MFLIX_SESSION_PORT=str(self.ports["session"]),
            MFLIX_GATEWAY_PORT=str(self.ports["gateway"]),
            MFLIX_GATEWAY_PUBLIC_URL=self.url("gateway"),
            MFLIX_GATEWAY_IDENTITY_URL=self.url("identity"),
            MFLIX_GATEWAY_SESSION_URL=self.url("session"),
            # Every test client comes from 127.0.0.1: only the throttling
            # tests may run into the address limits.
            MFLIX_GATEWAY_SIGNUPS_PER_ADDRESS="100000",
            MFLIX_GATEWAY_LOGIN_ADDRESS_FAILURES="100000",
        )
        environment.update(self.settings)
        return environment

    def start(self, *services: str) -> None:
        for service in services or SERVICES:
            log = open(self.log_dir / f"{self.name}-{service}.log", "ab")  # noqa: SIM115
            self.processes[service] = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                cwd=ROOT,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for service in services or SERVICES:
            wait_for_ready(self.url(service) + "/readyz")

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(service)
        process.send_signal(sig)
        process.wait(timeout=15)

    def stop(self) -> None:
        for service in list(self.processes):
            stop(self.processes.pop(service))

    def logs(self) -> str:
        return "".join(
            path.read_text(errors="replace")
            for path in sorted(self.log_dir.glob(f"{self.name}-*.log"))
        )
