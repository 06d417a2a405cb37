"""Benchmark mflix-auth against the reference Express peer on this machine.

One run starts FerretDB, Redis, the three services (at their default bcrypt
cost) and the reference Express peer (express-session with connect-mongo),
all on 127.0.0.1 in a temporary folder, then measures in this order:

1. ``GET /api/v1/me`` throughput and latency at a fixed concurrency, with
   users logged out under that load to time how soon their cookie gets 401;
2. logins per second against this machine's bcrypt limit, and ``/me``
   latency of one user with and without that login flood;
3. the resident memory of every server process;
4. ``/me`` throughput and latency again after extra session documents were
   inserted into both session collections.

It prints Markdown tables and stops every process it started, also on
Ctrl-C, SIGTERM or an error. Every load goes only to servers this script
started and is bounded in time and request count.

    .venv/bin/python -m bench.run --duration 20 --concurrency 32

The ``/me`` load comes from ``wrk`` when it is installed, because it needs
far less CPU than a Python client. Without it, an aiohttp client in a
separate process drives the load. The login flood always uses that aiohttp
process. All of them share the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import bcrypt
from pymongo import MongoClient

from services.identity.settings import IdentitySettings
from tests.support.processes import (
    FERRETDB,
    ROOT,
    Stack,
    free_port,
    stop,
    wait_for_port,
    with_database,
)

OURS = "mflix-auth"
PEER = "Express peer"
PASSWORD = "popcorn at midnight"
DEFAULT_BCRYPT_COST: int = IdentitySettings.model_fields["bcrypt_cost"].default
OUR_DATABASE = "mflix_bench"
PEER_DATABASE = "mflix_peer"
# Seconds one benchmark request may take before it counts as an error.
REQUEST_TIMEOUT = 10.0
# Upper bound on requests of one load phase, whatever its duration.
MAX_REQUESTS_PER_LOAD = 5_000_000
# Pause between /me polls after a logout, and the maximum wait for a 401.
POLL_INTERVAL = 0.015
REVOCATION_WAIT_LIMIT = 5.0
# Pause between two /me requests of the latency probe during login floods.
PROBE_INTERVAL = 0.02
# Seconds left out at each end of a flood, so the probe runs only under it.
FLOOD_MARGIN = 1.0
SIGNUP_CONCURRENCY = 8
INSERT_BATCH_SIZE = 1000
WRK_RESULT_PREFIX = "WRK_RESULT "

# wrk cycles through the cookies of the signed-up users and prints one JSON
# line of results. The cookie file is the first argument after "--".
WRK_SCRIPT = r"""
local cookies = {}
local position = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then cookies[#cookies + 1] = line end
  end
  position = math.random(#cookies)
end

function request()
  position = position % #cookies + 1
  return wrk.format("GET", wrk.path, { ["Cookie"] = cookies[position] })
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, '
      .. '"socket_errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# ---------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    duration: int
    concurrency: int
    users: int
    revocations: int
    probe_seconds: int
    extra_sessions: int
    insert_seconds: float
    scaling_duration: int
    load_generator: str
    wrk_threads: int
    peer_dir: Path | None
    work_dir: Path | None
    json_path: Path | None
    profile_dir: Path | None
    profile_seconds: int


def default_peer_dir() -> Path:
    configured = os.environ.get("MFLIX_PEER_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "peer"


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark mflix-auth against the reference Express peer.",
    )
    parser.add_argument(
        "--duration", type=int, default=20, help="seconds of each load phase"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="open connections of the /me load and concurrent logins of the flood",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=64,
        help="users signed up on each system; their cookies take turns in the load",
    )
    parser.add_argument(
        "--revocations",
        type=int,
        default=3,
        help="users logged out during the /me load to time revocation",
    )
    parser.add_argument(
        "--probe-seconds",
        type=int,
        default=10,
        help="seconds of the /me latency probe without a login flood",
    )
    parser.add_argument(
        "--extra-sessions",
        type=int,
        default=100_000,
        help="session documents inserted into each store before the last "
        "/me phase; 0 skips that phase",
    )
    parser.add_argument(
        "--insert-seconds",
        type=float,
        default=45.0,
        help="maximum seconds spent inserting extra sessions into each store",
    )
    parser.add_argument(
        "--scaling-duration",
        type=int,
        default=10,
        help="seconds of each /me load before and after the extra sessions",
    )
    parser.add_argument(
        "--load-generator",
        choices=["auto", "wrk", "aiohttp"],
        default="auto",
        help="client of the /me load; auto picks wrk when it is installed",
    )
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="threads of wrk (default 1)"
    )
    parser.add_argument(
        "--peer-dir",
        type=Path,
        default=default_peer_dir(),
        help="folder of the reference Express peer (server.js, package.json); "
        "default: $MFLIX_PEER_DIR or ../shared/peer beside the repository",
    )
    parser.add_argument(
        "--no-peer", action="store_true", help="measure mflix-auth alone"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="keep data, logs and the peer install in this folder instead of "
        "a temporary one",
    )
    parser.add_argument(
        "--json", dest="json_path", type=Path, help="also write results as JSON"
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="after the measured phases, record py-spy profiles of the "
        "services under load into this folder",
    )
    parser.add_argument(
        "--profile-seconds",
        type=int,
        default=10,
        help="seconds of each profiled load (with --profile-dir)",
    )
    arguments = parser.parse_args(argv)
    _validate(parser, arguments)
    return Options(
        duration=arguments.duration,
        concurrency=arguments.concurrency,
        users=arguments.users,
        revocations=arguments.revocations,
        probe_seconds=arguments.probe_seconds,
        extra_sessions=arguments.extra_sessions,
        insert_seconds=arguments.insert_seconds,
        scaling_duration=arguments.scaling_duration,
        load_generator=arguments.load_generator,
        wrk_threads=arguments.wrk_threads,
        peer_dir=None if arguments.no_peer else arguments.peer_dir,
        work_dir=arguments.work_dir,
        json_path=arguments.json_path,
        profile_dir=arguments.profile_dir,
        profile_seconds=arguments.profile_seconds,
    )


def _validate(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> None:
    if not 1 <= arguments.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    if not 1 <= arguments.concurrency <= 1000:
        parser.error("--concurrency must be between 1 and 1000")
    if not 0 <= arguments.revocations <= 10:
        parser.error("--revocations must be between 0 and 10")
    if not arguments.revocations + 1 <= arguments.users <= 5000:
        parser.error("--users must be more than --revocations and at most 5000")
    if not 0 <= arguments.extra_sessions <= 1_000_000:
        parser.error("--extra-sessions must be between 0 and 1000000")
    if not 1 <= arguments.scaling_duration <= 600:
        parser.error("--scaling-duration must be between 1 and 600 seconds")
    if not 1 <= arguments.profile_seconds <= 120:
        parser.error("--profile-seconds must be between 1 and 120")


# ---------------------------------------------------------------- results


@dataclass
class LoadResult:
    """Totals and latency of one bounded load; latencies in milliseconds."""

    generator: str
    requests: int
    non_2xx: int
    socket_errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else math.nan


@dataclass
class Revocation:
    """One logout under load; times in milliseconds from the logout's response."""

    logout_status: int
    logout_ms: float
    visible_after_ms: float | None
    stale_polls: int
    under_load: bool


@dataclass
class MePhase:
    load: LoadResult
    revocations: list[Revocation]


@dataclass
class LoginPhase:
    flood: LoadResult
    logins_ok: int
    probe_idle: LoadResult
    probe_flood: LoadResult

    @property
    def logins_per_second(self) -> float:
        return self.logins_ok / self.flood.seconds if self.flood.seconds else 0.0


@dataclass
class ScalingPhase:
    inserted: int
    insert_seconds: float
    before: LoadResult
    after: LoadResult


@dataclass
class SystemResults:
    name: str
    me: MePhase | None = None
    logins: LoginPhase | None = None
    memory_kib: dict[str, tuple[int, int]] = field(default_factory=dict)
    scaling: ScalingPhase | None = None


@dataclass
class Report:
    machine: dict[str, str]
    options: dict[str, Any]
    bcrypt_seconds: float
    bcrypt_limit: float
    systems: dict[str, SystemResults]
    notes: list[str]


# ---------------------------------------------------------------- machine


def command_output(command: Sequence[str]) -> str:
    """Return the first output line of a command, or "missing" when it fails."""
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    lines = (completed.stdout or completed.stderr).strip().splitlines()
    return lines[0].strip() if lines else "missing"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def memory_total_gib() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def describe_machine() -> dict[str, str]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": memory_total_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": command_output(["node", "--version"]),
        "ferretdb": command_output([str(FERRETDB), "--version"]),
        "redis": command_output(["redis-server", "--version"]),
        "wrk": command_output(["wrk", "--version"]),
    }


def time_bcrypt(cost: int, rounds: int = 5) -> float:
    """Return the median seconds of one pyca/bcrypt hash at ``cost``."""
    salt = bcrypt.gensalt(cost)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        bcrypt.hashpw(PASSWORD.encode(), salt)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return samples[len(samples) // 2]


def rss_kib(pid: int) -> tuple[int, int]:
    """Return VmRSS and VmHWM (peak RSS) of a process in KiB, or (0, 0) if gone."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    for line in status.splitlines():
        key, _, rest = line.partition(" ")
        if key in values:
            values[key] = int(rest.split()[0])
    return values["VmRSS:"], values["VmHWM:"]


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class System:
    """A running system under test: its base URL and server processes by role."""

    name: str
    base_url: str
    pids: dict[str, int]
    mongodb_url: str
    database: str


def launch(
    resources: contextlib.ExitStack,
    command: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server process whose stop is registered before anything can fail."""
    log = resources.enter_context(open(log_path, "ab"))  # noqa: SIM115
    process = subprocess.Popen(
        list(command), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    resources.callback(stop, process)
    return process


def start_ferretdb(resources: contextlib.ExitStack, directory: Path) -> tuple[int, str]:
    """Start FerretDB over SQLite; return its pid and a MongoDB URL."""
    if not FERRETDB.exists():
        raise RuntimeError(
            f"{FERRETDB} is missing: run deploy/local/install-ferretdb.sh"
        )
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        str(FERRETDB),
        "--handler=sqlite",
        f"--sqlite-url=file:{directory}/",
        f"--state-dir={directory}",
        f"--listen-addr=127.0.0.1:{port}",
        "--telemetry=disable",
        "--debug-addr=-",
        "--log-level=warn",
    ]
    process = launch(resources, command, directory / "ferretdb.log")
    wait_for_port(port)
    return process.pid, f"mongodb://127.0.0.1:{port}/{OUR_DATABASE}"


def start_redis(resources: contextlib.ExitStack, directory: Path) -> tuple[int, str]:
    """Start Redis with the append-only file on, as in production."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: apt-get install redis-server")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
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
    process = launch(resources, command, directory / "redis.log")
    wait_for_port(port)
    return process.pid, f"redis://127.0.0.1:{port}/0"


def start_ours(
    resources: contextlib.ExitStack, work: Path, mongodb_url: str, redis_url: str
) -> System:
    """Start identity, session and gateway, one process each, at bcrypt cost 12."""
    stack = Stack(
        mongodb_url,
        redis_url,
        settings={"MFLIX_IDENTITY_BCRYPT_COST": str(DEFAULT_BCRYPT_COST)},
        name=OUR_DATABASE,
    )
    stack.log_dir = work / "logs"
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    resources.callback(stack.stop)
    stack.start()
    pids = {service: process.pid for service, process in stack.processes.items()}
    return System(OURS, stack.url("gateway"), pids, mongodb_url, stack.database)


def install_peer(source: Path, work: Path) -> Path | None:
    """Copy the peer into ``work`` and install its packages; None when impossible."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        print("SKIP peer: node and npm are missing (apt-get install nodejs npm)")
        return None
    if not (source / "server.js").is_file():
        print(
            f"SKIP peer: {source}/server.js not found; set MFLIX_PEER_DIR "
            "or --peer-dir to the reference Express peer"
        )
        return None
    target = work / "peer"
    if not (target / "node_modules").is_dir():
        shutil.copytree(
            source,
            target,
            ignore=shutil.ignore_patterns("node_modules"),
            dirs_exist_ok=True,
        )
        make_writable(target)
        npm_install(npm, target)
    return target


def make_writable(directory: Path) -> None:
    """Add the owner's write bit, which a copy of a read-only source lacks."""
    for path in [directory, *directory.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def npm_install(npm: str, directory: Path) -> None:
    """Run ``npm ci``, or ``npm install`` when there is no usable lock file."""
    log_path = directory / "npm.log"
    print(f"installing the peer's packages in {directory} (log: {log_path})")
    with open(log_path, "ab") as log:
        for subcommand in ("ci", "install"):
            completed = subprocess.run(
                [npm, subcommand, "--no-audit", "--no-fund"],
                cwd=directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
                check=False,
            )
            if completed.returncode == 0:
                return
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"npm ci and npm install failed in {directory}:\n{tail}")


def start_peer(
    resources: contextlib.ExitStack, directory: Path, ferretdb_url: str
) -> System:
    port = free_port()
    mongodb_url = with_database(ferretdb_url, PEER_DATABASE)
    environment = {
        **os.environ,
        "MONGODB_URL": mongodb_url,
        "PORT": str(port),
        # FerretDB 1.x has no TTL indexes, so connect-mongo removes expired
        # sessions on a timer instead.
        "AUTO_REMOVE": "interval",
    }
    node = shutil.which("node") or "node"
    process = launch(
        resources,
        [node, "server.js"],
        directory / "peer.log",
        cwd=directory,
        env=environment,
    )
    wait_for_port(port, timeout=60)
    if process.poll() is not None:
        raise RuntimeError(f"the peer exited at start; see {directory}/peer.log")
    return System(
        PEER,
        f"http://127.0.0.1:{port}",
        {"node": process.pid},
        mongodb_url,
        PEER_DATABASE,
    )


# ---------------------------------------------------------------- HTTP steps


@dataclass(frozen=True)
class User:
    email: str
    cookie: str


def cookie_header(response: aiohttp.ClientResponse) -> str:
    """Return the cookies a response set, as one Cookie request header."""
    return "; ".join(
        f"{name}={morsel.coded_value}" for name, morsel in response.cookies.items()
    )


async def sign_up(http: aiohttp.ClientSession, base_url: str, email: str) -> User:
    body = {"name": "Bench Viewer", "email": email, "password": PASSWORD}
    async with http.post(f"{base_url}/api/v1/signup", json=body) as response:
        text = await response.text()
        if response.status != 201:
            raise RuntimeError(
                f"signup of {email} at {base_url} returned {response.status}: "
                f"{text[:200]}"
            )
        return User(email, cookie_header(response))


async def sign_up_users(system: System, count: int) -> list[User]:
    """Sign up ``count`` new users, a few at a time, and return their cookies."""
    run_id = secrets.token_hex(4)
    semaphore = asyncio.Semaphore(SIGNUP_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=120)

    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as http:

        async def one(index: int) -> User:
            async with semaphore:
                email = f"bench-{run_id}-{index}@example.com"
                return await sign_up(http, system.base_url, email)

        return await asyncio.gather(*(one(index) for index in range(count)))


# ---------------------------------------------------------------- load


@dataclass(frozen=True)
class RequestSpec:
    method: str
    url: str
    cookie: str | None = None
    body: dict[str, str] | None = None


@dataclass(frozen=True)
class LoadSpec:
    """A bounded load: ``requests`` taken in turn by ``concurrency`` loops."""

    requests: list[RequestSpec]
    concurrency: int
    seconds: float
    # Minimum seconds between the starts of two requests of one loop.
    interval: float = 0.0
    max_requests: int = MAX_REQUESTS_PER_LOAD


def nearest_rank(ascending: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ascending values; NaN when empty."""
    if not ascending:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ascending)))
    return ascending[rank - 1]


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    non_2xx: int = 0
    socket_errors: int = 0


async def _request_loop(
    http: aiohttp.ClientSession,
    spec: LoadSpec,
    turns: Iterator[int],
    deadline: float,
    tally: _Tally,
) -> None:
    while time.monotonic() < deadline and len(tally.latencies) < spec.max_requests:
        request = spec.requests[next(turns) % len(spec.requests)]
        headers = {"Cookie": request.cookie} if request.cookie else None
        started = time.perf_counter()
        try:
            async with http.request(
                request.method, request.url, json=request.body, headers=headers
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            tally.socket_errors += 1
            await asyncio.sleep(0.01)
            continue
        latency = time.perf_counter() - started
        tally.latencies.append(latency)
        if not 200 <= status < 300:
            tally.non_2xx += 1
        if spec.interval > latency:
            await asyncio.sleep(spec.interval - latency)


async def drive(spec: LoadSpec) -> LoadResult:
    """Run a load with an aiohttp client in the current event loop."""
    tally = _Tally()
    turns = itertools.count()
    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as http:
        started = time.monotonic()
        deadline = started + spec.seconds
        loops = [
            _request_loop(http, spec, turns, deadline, tally)
            for _ in range(spec.concurrency)
        ]
        await asyncio.gather(*loops)
        seconds = time.monotonic() - started
    latencies = sorted(tally.latencies)
    return LoadResult(
        generator="aiohttp",
        requests=len(latencies),
        non_2xx=tally.non_2xx,
        socket_errors=tally.socket_errors,
        seconds=seconds,
        p50_ms=nearest_rank(latencies, 0.50) * 1000,
        p99_ms=nearest_rank(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else math.nan,
    )


def load_worker(spec: LoadSpec) -> LoadResult:
    """Run one load in a worker process; the entry point of the process pool."""
    return asyncio.run(drive(spec))


async def drive_in_process(pool: Executor, spec: LoadSpec) -> LoadResult:
    return await asyncio.get_running_loop().run_in_executor(pool, load_worker, spec)


async def run_wrk(
    url: str, cookies: Sequence[str], seconds: int, options: Options, work: Path
) -> LoadResult:
    """Drive GET ``url`` with wrk, cycling through ``cookies``."""
    script = work / "me.lua"
    script.write_text(WRK_SCRIPT)
    cookie_file = work / f"cookies-{secrets.token_hex(4)}.txt"
    cookie_file.write_text("\n".join(cookies) + "\n")
    command = [
        "wrk",
        f"-t{min(options.wrk_threads, options.concurrency)}",
        f"-c{options.concurrency}",
        f"-d{seconds}s",
        f"--timeout={int(REQUEST_TIMEOUT)}s",
        f"--script={script}",
        url,
        "--",
        str(cookie_file),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            process.communicate(), timeout=seconds + 30
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return parse_wrk_output(stdout.decode(), stderr.decode())


def parse_wrk_output(stdout: str, stderr: str) -> LoadResult:
    for line in stdout.splitlines():
        if line.startswith(WRK_RESULT_PREFIX):
            values = json.loads(line.removeprefix(WRK_RESULT_PREFIX))
            return LoadResult(
                generator="wrk",
                requests=values["requests"],
                non_2xx=values["non_2xx"],
                socket_errors=values["socket_errors"],
                seconds=values["duration_us"] / 1e6,
                p50_ms=values["p50_us"] / 1000,
                p99_ms=values["p99_us"] / 1000,
                max_ms=values["max_us"] / 1000,
            )
    raise RuntimeError(f"wrk printed no result line:\n{stdout}\n{stderr}")


def resolve_generator(requested: str) -> str:
    """Pick the /me load generator, saying why when wrk cannot be used."""
    has_wrk = shutil.which("wrk") is not None
    if requested == "wrk" and not has_wrk:
        raise RuntimeError("wrk is missing: apt-get install wrk")
    if requested == "auto" and not has_wrk:
        print(
            "wrk is missing (apt-get install wrk): the /me load uses an aiohttp "
            "client in a separate process, which needs more CPU"
        )
        return "aiohttp"
    return "wrk" if requested == "auto" else requested


class Bench:
    """The shared tools of every phase: options, folder and load generators."""

    def __init__(self, options: Options, work: Path, pool: Executor) -> None:
        self.options = options
        self.work = work
        self.pool = pool
        self.generator = resolve_generator(options.load_generator)

    async def load_me(
        self, system: System, cookies: Sequence[str], seconds: int
    ) -> LoadResult:
        """Drive GET /api/v1/me with ``cookies`` in turn at the set concurrency."""
        url = f"{system.base_url}/api/v1/me"
        if self.generator == "wrk":
            return await run_wrk(url, cookies, seconds, self.options, self.work)
        spec = LoadSpec(
            requests=[RequestSpec("GET", url, cookie=cookie) for cookie in cookies],
            concurrency=self.options.concurrency,
            seconds=seconds,
        )
        return await drive_in_process(self.pool, spec)


# ---------------------------------------------------------------- phases


async def measure_revocation(
    base_url: str, cookie: str, load_ends: float
) -> Revocation:
    """Log out with ``cookie``, then poll /me with it until the gateway says 401."""
    headers = {"Cookie": cookie}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as http:
        started = time.perf_counter()
        async with http.post(f"{base_url}/api/v1/logout", headers=headers) as reply:
            await reply.read()
            logout_status = reply.status
        logged_out = time.perf_counter()
        visible_after: float | None = None
        stale_polls = 0
        while time.perf_counter() - logged_out < REVOCATION_WAIT_LIMIT:
            async with http.get(f"{base_url}/api/v1/me", headers=headers) as reply:
                await reply.read()
                status = reply.status
            if status == 401:
                visible_after = (time.perf_counter() - logged_out) * 1000
                break
            stale_polls += 1
            await asyncio.sleep(POLL_INTERVAL)
    return Revocation(
        logout_status=logout_status,
        logout_ms=(logged_out - started) * 1000,
        visible_after_ms=visible_after,
        stale_polls=stale_polls,
        under_load=time.monotonic() < load_ends,
    )


async def revoke_during_load(
    base_url: str, cookies: Sequence[str], seconds: int
) -> list[Revocation]:
    """Log users out one by one, from 40% of the load on, 2 s apart at least."""
    load_ends = time.monotonic() + seconds
    await asyncio.sleep(seconds * 0.4)
    results = []
    for cookie in cookies:
        results.append(await measure_revocation(base_url, cookie, load_ends))
        await asyncio.sleep(2.0)
    return results


async def me_phase(bench: Bench, system: System, users: Sequence[User]) -> MePhase:
    cookies = [user.cookie for user in users]
    revoked = cookies[: bench.options.revocations]
    seconds = bench.options.duration
    load = asyncio.create_task(bench.load_me(system, cookies, seconds))
    revocations = await revoke_during_load(system.base_url, revoked, seconds)
    return MePhase(await load, revocations)


def probe_spec(system: System, cookie: str, seconds: float) -> LoadSpec:
    url = f"{system.base_url}/api/v1/me"
    return LoadSpec(
        requests=[RequestSpec("GET", url, cookie=cookie)],
        concurrency=1,
        seconds=seconds,
        interval=PROBE_INTERVAL,
    )


async def login_phase(
    bench: Bench, system: System, users: Sequence[User], probe_cookie: str
) -> LoginPhase:
    """Flood logins with correct passwords while one user keeps calling /me."""
    options = bench.options
    probe_idle = await drive(probe_spec(system, probe_cookie, options.probe_seconds))
    url = f"{system.base_url}/api/v1/login"
    flood_spec = LoadSpec(
        requests=[
            RequestSpec("POST", url, body={"email": user.email, "password": PASSWORD})
            for user in users
        ],
        concurrency=options.concurrency,
        seconds=options.duration,
    )
    flood_task = asyncio.create_task(drive_in_process(bench.pool, flood_spec))
    await asyncio.sleep(FLOOD_MARGIN)
    probe_seconds = max(1.0, options.duration - 2 * FLOOD_MARGIN)
    probe_flood = await drive(probe_spec(system, probe_cookie, probe_seconds))
    flood = await flood_task
    logins_ok = flood.requests - flood.non_2xx
    return LoginPhase(flood, logins_ok, probe_idle, probe_flood)


def our_session_documents(count: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Yield live session documents shaped like the session service's."""
    for index in range(count):
        user_id = f"{index % 10_000:024x}"
        yield {
            "_id": secrets.token_hex(32),
            "session_id": secrets.token_urlsafe(12),
            "user_id": user_id,
            "user": {"id": user_id, "name": "Extra", "email": f"x{index}@example.com"},
            "data": "{}",
            "remember": False,
            "user_agent": "bench",
            "ip": "127.0.0.1",
            "created_at": now,
            "last_seen_at": now,
            "idle_expires_at": now + timedelta(days=1),
            "absolute_expires_at": now + timedelta(days=14),
            "expires_at": now + timedelta(days=1),
            "revoked_at": None,
        }


def peer_session_documents(count: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Yield live session documents shaped like connect-mongo's (stringified)."""
    expires = now + timedelta(days=1)
    for index in range(count):
        session = {
            "cookie": {
                "originalMaxAge": 86_400_000,
                "expires": expires.isoformat(),
                "httpOnly": True,
                "path": "/",
            },
            "userId": f"{index:024x}",
            "name": "Extra",
        }
        yield {
            "_id": secrets.token_urlsafe(24),
            "expires": expires,
            "session": json.dumps(session),
        }


def insert_sessions(system: System, count: int, time_limit: float) -> tuple[int, float]:
    """Insert up to ``count`` extra sessions in batches, for at most ``time_limit``.

    Returns the number inserted and the seconds it took.
    """
    make = our_session_documents if system.name == OURS else peer_session_documents
    documents = make(count, datetime.now(UTC))
    client: MongoClient[dict[str, Any]] = MongoClient(
        system.mongodb_url, serverSelectionTimeoutMS=5000
    )
    inserted = 0
    started = time.monotonic()
    try:
        collection = client[system.database]["sessions"]
        while inserted < count and time.monotonic() - started < time_limit:
            batch = list(itertools.islice(documents, INSERT_BATCH_SIZE))
            collection.insert_many(batch, ordered=False)
            inserted += len(batch)
    finally:
        client.close()
    return inserted, time.monotonic() - started


async def scaling_phases(
    bench: Bench, systems: Sequence[System], cookies: dict[str, list[str]]
) -> dict[str, ScalingPhase]:
    """Measure /me before and after extra sessions; every system gets as many."""
    options = bench.options
    seconds = options.scaling_duration
    results: dict[str, ScalingPhase] = {}
    target = options.extra_sessions
    for system in systems:
        before = await bench.load_me(system, cookies[system.name], seconds)
        inserted, took = await asyncio.to_thread(
            insert_sessions, system, target, options.insert_seconds
        )
        # The next system gets the count the first could insert in time.
        target = inserted
        after = await bench.load_me(system, cookies[system.name], seconds)
        results[system.name] = ScalingPhase(inserted, took, before, after)
    return results


# ---------------------------------------------------------------- profiling


def find_py_spy() -> str | None:
    beside_python = Path(sys.executable).parent / "py-spy"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("py-spy")


async def record_profiles(
    py_spy: str, pids: dict[str, int], seconds: int, out_dir: Path, label: str
) -> list[Path]:
    """Record collapsed py-spy stacks of each pid for ``seconds``, by function."""
    outputs = []
    processes = []
    for role, pid in pids.items():
        output = out_dir / f"{label}-{role}.txt"
        command = [
            py_spy,
            "record",
            f"--pid={pid}",
            f"--duration={seconds}",
            "--rate=200",
            "--format=raw",
            "--function",
            "--nonblocking",
            f"--output={output}",
        ]
        processes.append(
            await asyncio.create_subprocess_exec(
                *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        outputs.append(output)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(process.wait() for process in processes)),
            timeout=seconds + 30,
        )
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    return [output for output in outputs if output.exists()]


def summarize_profile(path: Path, top: int = 12) -> list[str]:
    """Return the functions with most samples on top of the stack, as lines."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return [f"{path.name}: no samples"]
    lines = [f"{path.name}: {total} samples"]
    lines += [
        f"  self {count / total:6.1%}  {frame}" for frame, count in own.most_common(top)
    ]
    lines += [
        f"  incl {count / total:6.1%}  {frame}"
        for frame, count in inclusive.most_common(top + 8)
    ]
    return lines


async def profile_ours(
    bench: Bench, ours: System, users: Sequence[User], out_dir: Path
) -> None:
    """Profile the services under a /me load, then under a login flood."""
    py_spy = find_py_spy()
    if py_spy is None:
        print("SKIP profiles: py-spy is missing (.venv/bin/pip install py-spy)")
        return
    seconds = bench.options.profile_seconds
    live = [user.cookie for user in users[bench.options.revocations :]]
    me_load = asyncio.create_task(bench.load_me(ours, live, seconds + 2))
    await asyncio.sleep(1)
    files = await record_profiles(py_spy, ours.pids, seconds, out_dir, "me")
    await me_load
    url = f"{ours.base_url}/api/v1/login"
    flood_spec = LoadSpec(
        requests=[
            RequestSpec("POST", url, body={"email": user.email, "password": PASSWORD})
            for user in users
        ],
        concurrency=bench.options.concurrency,
        seconds=seconds + 2,
    )
    flood = asyncio.create_task(drive_in_process(bench.pool, flood_spec))
    await asyncio.sleep(1)
    files += await record_profiles(py_spy, ours.pids, seconds, out_dir, "login")
    await flood
    print(f"\n### Profiles ({out_dir}, py-spy, {seconds} s each)\n\n```")
    for path in files:
        print("\n".join(summarize_profile(path)))
    print("```")


# ---------------------------------------------------------------- reporting


def number(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(ours: float | None, peer: float | None) -> str:
    if not ours or not peer or math.isnan(ours) or math.isnan(peer):
        return "n/a"
    return f"{ours / peer:.2f}"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "missed")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def me_table(report: Report) -> str:
    ours, peer = report.systems.get(OURS), report.systems.get(PEER)
    ours_load = ours.me.load if ours and ours.me else None
    peer_load = peer.me.load if peer and peer.me else None

    def cell(load: LoadResult | None, name: str, digits: int = 1) -> str:
        return number(getattr(load, name), digits) if load else "n/a"

    def both(name: str, digits: int = 1) -> list[str]:
        return [cell(ours_load, name, digits), cell(peer_load, name, digits)]

    rows = [
        ["requests/s", *both("rate"), _ratio_of(ours_load, peer_load, "rate")],
        [
            "p50 latency (ms)",
            *both("p50_ms", 2),
            _ratio_of(ours_load, peer_load, "p50_ms"),
        ],
        [
            "p99 latency (ms)",
            *both("p99_ms", 2),
            _ratio_of(ours_load, peer_load, "p99_ms"),
        ],
        ["max latency (ms)", *both("max_ms", 1), ""],
        ["responses", *both("requests", 0), ""],
        ["non-2xx responses", *both("non_2xx", 0), ""],
        ["socket errors", *both("socket_errors", 0), ""],
    ]
    return table(["GET /api/v1/me", OURS, PEER, "ours/peer"], rows)


def _ratio_of(ours: LoadResult | None, peer: LoadResult | None, name: str) -> str:
    if ours is None or peer is None:
        return "n/a"
    return ratio(getattr(ours, name), getattr(peer, name))


def revocation_table(report: Report) -> str:
    rows = []
    for system in report.systems.values():
        for index, item in enumerate(system.me.revocations if system.me else []):
            rows.append(
                [
                    system.name,
                    str(index + 1),
                    str(item.logout_status),
                    number(item.logout_ms, 1),
                    number(item.visible_after_ms, 1)
                    if item.visible_after_ms is not None
                    else f"not within {REVOCATION_WAIT_LIMIT:.0f} s",
                    str(item.stale_polls),
                    "yes" if item.under_load else "no",
                ]
            )
    header = [
        "system",
        "logout",
        "status",
        "logout took (ms)",
        "first 401 after (ms)",
        "200s after logout",
        "load still running",
    ]
    return table(header, rows)


def login_table(report: Report) -> str:
    rows = []
    for system in report.systems.values():
        if system.logins is None:
            continue
        logins = system.logins
        rows.append(
            [
                system.name,
                number(logins.logins_per_second, 2),
                f"{logins.logins_per_second / report.bcrypt_limit:.0%}",
                f"{logins.logins_ok} / {logins.flood.requests}",
                number(logins.flood.p50_ms, 0),
                number(logins.flood.p99_ms, 0),
            ]
        )
    header = [
        "system",
        "logins/s",
        "of bcrypt limit",
        "ok / sent",
        "login p50 (ms)",
        "login p99 (ms)",
    ]
    return table(header, rows)


def probe_table(report: Report) -> str:
    rows = []
    for system in report.systems.values():
        if system.logins is None:
            continue
        idle, flood = system.logins.probe_idle, system.logins.probe_flood
        rows.append(
            [
                system.name,
                number(idle.p50_ms, 2),
                number(idle.p99_ms, 2),
                number(flood.p50_ms, 2),
                number(flood.p99_ms, 2),
                number(flood.max_ms, 1),
                f"{flood.non_2xx + flood.socket_errors} / {flood.requests}",
            ]
        )
    header = [
        "system",
        "idle p50 (ms)",
        "idle p99 (ms)",
        "flood p50 (ms)",
        "flood p99 (ms)",
        "flood max (ms)",
        "failed / sent in flood",
    ]
    return table(header, rows)


def memory_table(report: Report) -> str:
    rows = []
    for system in report.systems.values():
        for role, (rss, peak) in system.memory_kib.items():
            rows.append([system.name, role, number(rss / 1024), number(peak / 1024)])
    return table(["system", "process", "RSS (MiB)", "peak RSS (MiB)"], rows)


def scaling_table(report: Report) -> str:
    rows = []
    for system in report.systems.values():
        scaling = system.scaling
        if scaling is None:
            continue
        for label, load in (("before", scaling.before), ("after", scaling.after)):
            rows.append(
                [
                    system.name,
                    label,
                    number(load.rate),
                    number(load.p50_ms, 2),
                    number(load.p99_ms, 2),
                    str(load.non_2xx + load.socket_errors),
                ]
            )
        rows.append(
            [
                system.name,
                f"inserted {scaling.inserted:,} in {scaling.insert_seconds:.1f} s",
                "",
                "",
                "",
                "",
            ]
        )
    header = [
        "system",
        "extra sessions",
        "requests/s",
        "p50 (ms)",
        "p99 (ms)",
        "failed",
    ]
    return table(header, rows)


def targets(report: Report) -> list[tuple[str, str, str]]:
    """Return each target with the measured value and whether it was met."""
    ours, peer = report.systems.get(OURS), report.systems.get(PEER)
    rows: list[tuple[str, str, str]] = []
    if ours and ours.me and peer and peer.me:
        throughput = ours.me.load.rate / peer.me.load.rate
        tail = ours.me.load.p99_ms / peer.me.load.p99_ms
        rows.append(
            (
                "/me throughput >= 3x peer",
                f"{throughput:.2f}x",
                verdict(throughput >= 3),
            )
        )
        rows.append(("/me p99 <= 0.5x peer", f"{tail:.2f}x", verdict(tail <= 0.5)))
    if ours and ours.logins:
        share = ours.logins.logins_per_second / report.bcrypt_limit
        rows.append(
            ("logins >= 90% of bcrypt limit", f"{share:.0%}", verdict(share >= 0.9))
        )
    if ours and ours.me and ours.me.revocations:
        seen = [item.visible_after_ms for item in ours.me.revocations]
        worst = None if None in seen else max(v for v in seen if v is not None)
        rows.append(
            (
                "revocation seen within 1 s",
                "never" if worst is None else f"max {worst:.0f} ms",
                verdict(worst is not None and worst <= 1000),
            )
        )
    return rows


def render(report: Report) -> str:
    machine = report.machine
    sections = [
        "## Machine\n",
        "\n".join(f"- {key}: {value}" for key, value in machine.items()),
        f"- bcrypt cost {DEFAULT_BCRYPT_COST}: {report.bcrypt_seconds * 1000:.0f} ms "
        f"per hash, limit {report.bcrypt_limit:.2f} logins/s "
        f"({machine['cores']} cores / hash time)",
        f"- options: {json.dumps(report.options)}",
        "\n## GET /api/v1/me under load\n",
        me_table(report),
        "\n## Logout under that load\n",
        revocation_table(report),
        "\n## Login flood\n",
        login_table(report),
        "\n## /me latency of one user, idle and during the login flood\n",
        probe_table(report),
        "\n## Memory after the load phases\n",
        memory_table(report),
    ]
    if any(system.scaling for system in report.systems.values()):
        sections += [
            "\n## /me before and after extra sessions\n",
            scaling_table(report),
        ]
    sections += [
        "\n## Targets\n",
        table(["target", "measured", "result"], targets(report)),
    ]
    if report.notes:
        sections += ["\n## Notes\n", "\n".join(f"- {note}" for note in report.notes)]
    return "\n".join(sections) + "\n"


# ---------------------------------------------------------------- main


async def measure(
    bench: Bench, systems: list[System], shared_pids: dict[str, int], report: Report
) -> None:
    options = bench.options
    users: dict[str, list[User]] = {}
    for system in systems:
        print(f"signing up {options.users} users on {system.name}")
        users[system.name] = await sign_up_users(system, options.users)
    for system in systems:
        print(f"/me load on {system.name} for {options.duration} s")
        report.systems[system.name].me = await me_phase(
            bench, system, users[system.name]
        )
    for system in systems:
        print(f"login flood on {system.name} for {options.duration} s")
        probe_cookie = users[system.name][-1].cookie
        report.systems[system.name].logins = await login_phase(
            bench, system, users[system.name], probe_cookie
        )
    for system in systems:
        result = report.systems[system.name]
        result.memory_kib = {role: rss_kib(pid) for role, pid in system.pids.items()}
    report.systems[OURS].memory_kib.update(
        {f"{role} (shared)": rss_kib(pid) for role, pid in shared_pids.items()}
    )
    if options.extra_sessions > 0:
        print(f"inserting up to {options.extra_sessions:,} sessions per system")
        live = {
            name: [user.cookie for user in items[options.revocations :]]
            for name, items in users.items()
        }
        scaling = await scaling_phases(bench, systems, live)
        for name, phase in scaling.items():
            report.systems[name].scaling = phase
    if options.profile_dir is not None:
        ours = next(system for system in systems if system.name == OURS)
        await profile_ours(bench, ours, users[OURS], options.profile_dir)


def start_pool(resources: contextlib.ExitStack) -> ProcessPoolExecutor:
    """Start the load-generator process now, so its start-up is not measured."""
    pool = ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    )
    resources.callback(pool.shutdown, wait=True, cancel_futures=True)
    pool.submit(nearest_rank, [1.0], 0.5).result(timeout=60)
    return pool


def work_directory(resources: contextlib.ExitStack, options: Options) -> Path:
    if options.work_dir is not None:
        options.work_dir.mkdir(parents=True, exist_ok=True)
        return options.work_dir.resolve()
    return Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))


def default_notes(bench: Bench) -> list[str]:
    cores = os.cpu_count()
    return [
        f"The load generator ({bench.generator} for /me, aiohttp for logins) runs "
        f"on the same {cores} cores as every server, so all numbers include that "
        "competition.",
        "Both systems use one FerretDB 1.24.2 (SQLite handler) instead of "
        "MongoDB, each with its own database.",
        "Every service and the peer run as a single process; the gateway caches "
        "a resolved session for up to 1 s (MFLIX_GATEWAY_CACHE_TTL default).",
    ]


def run(options: Options) -> Report:
    with contextlib.ExitStack() as resources:
        machine = describe_machine()
        print(f"timing bcrypt at cost {DEFAULT_BCRYPT_COST}")
        hash_seconds = time_bcrypt(DEFAULT_BCRYPT_COST)
        work = work_directory(resources, options)
        if options.profile_dir is not None:
            options.profile_dir.mkdir(parents=True, exist_ok=True)
        peer_dir = install_peer(options.peer_dir, work) if options.peer_dir else None
        print(f"starting FerretDB, Redis and the services in {work}")
        ferretdb_pid, mongodb_url = start_ferretdb(resources, work / "ferretdb")
        redis_pid, redis_url = start_redis(resources, work / "redis")
        systems = [start_ours(resources, work, mongodb_url, redis_url)]
        if peer_dir is not None:
            systems.append(start_peer(resources, peer_dir, mongodb_url))
        pool = start_pool(resources)
        bench = Bench(options, work, pool)
        report = Report(
            machine=machine,
            options={
                key: str(value) if isinstance(value, Path) else value
                for key, value in asdict(options).items()
                if key not in {"peer_dir", "work_dir", "json_path", "profile_dir"}
            },
            bcrypt_seconds=hash_seconds,
            bcrypt_limit=(os.cpu_count() or 1) / hash_seconds,
            systems={system.name: SystemResults(system.name) for system in systems},
            notes=default_notes(bench),
        )
        shared_pids = {"ferretdb": ferretdb_pid, "redis": redis_pid}
        asyncio.run(measure(bench, systems, shared_pids, report))
        print("stopping every process")
    return report


def raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    try:
        report = run(options)
    except KeyboardInterrupt:
        print("interrupted: every started process was stopped", file=sys.stderr)
        return 130
    print()
    print(render(report))
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
