"""Benchmark mflix-auth against the reference Express peer on this machine.

One run starts FerretDB, Redis, the three services (at their default bcrypt
cost) and the reference Express peer (express-session with connect-mongo),
all on 127.0.0.1 in a temporary folder, then measures in this order:

1. ``GET /api/v1/me`` throughput and latency at a fixed concurrency, with
   users logged out under that load to time how soon their cookie gets 401.
2. Logins per second against this machine's bcrypt limit, and ``/me``
   latency of one user with and without that login flood.
3. The resident memory of every server process.
4. Optionally, py-spy profiles of our services under both loads.
5. ``/me`` throughput and latency again after extra session documents were
   inserted into both session collections.

Before each phase it waits until the servers are idle, and it reports the
CPU use of every process during each phase, including "other" programs on
the machine. It prints Markdown tables and stops every process it started,
also on Ctrl-C, SIGTERM or an error. Every load goes only to servers that
this script started and is bounded in time and request count.

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
import resource
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
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
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
# Seconds one benchmark request may take before it counts as an error. A
# login waits longer because a flood queues it behind other bcrypt checks.
REQUEST_TIMEOUT = 10.0
LOGIN_TIMEOUT = 30.0
# Upper bound on the requests of one aiohttp load, whatever its duration
# (wrk stops by time only).
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
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOAD_GENERATOR = "load generator"
# A phase starts once all servers together use less than this share of one
# core (in %) over SETTLE_WINDOW seconds, or after SETTLE_LIMIT seconds.
SETTLED_CPU_PERCENT = 15.0
SETTLE_WINDOW = 0.5
SETTLE_LIMIT = 30.0
# Seconds over which the CPU use of idle servers is measured.
IDLE_SAMPLE_SECONDS = 3.0
OTHER_PROCESSES = "other"
# Other programs using this much of one core (in %) during a phase get a note.
OTHER_CPU_NOTE_PERCENT = 20.0

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
    # MFLIX_* variables given to our services on top of the defaults.
    settings: dict[str, str]


def default_peer_dir() -> Path:
    configured = os.environ.get("MFLIX_PEER_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "peer"


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = build_parser()
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
        settings=parse_settings(parser, arguments.setting),
    )


def build_parser() -> argparse.ArgumentParser:
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
        help="after the /me and login phases, record py-spy profiles of the "
        "services under load into this folder",
    )

    parser.add_argument(
        "--profile-seconds",
        type=int,
        default=10,
        help="seconds of each profiled load (with --profile-dir)",
    )

    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="MFLIX_NAME=VALUE",
        help="pass a setting to our services, such as MFLIX_LOG_LEVEL=WARNING; "
        "repeatable; the bcrypt cost cannot be changed",
    )
    return parser


def parse_settings(
    parser: argparse.ArgumentParser, pairs: Sequence[str]
) -> dict[str, str]:
    """Parse --setting values, rejecting other variables and the bcrypt cost."""
    settings = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name.startswith("MFLIX_"):
            parser.error(f"invalid --setting {pair!r}: expected MFLIX_NAME=VALUE")
        if name == "MFLIX_IDENTITY_BCRYPT_COST":
            parser.error(
                "--setting MFLIX_IDENTITY_BCRYPT_COST is rejected: logins are "
                f"measured at the default cost {DEFAULT_BCRYPT_COST}"
            )
        settings[name] = value
    return settings


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
    """Totals and latency, in milliseconds, of one bounded load."""

    generator: str
    requests: int
    # wrk counts only responses with a status of 400 or more here.
    non_2xx: int
    socket_errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    # CPU seconds the client itself used (wrk, or the aiohttp process).
    client_cpu_seconds: float = 0.0
    # Responses by HTTP status; wrk reports only the non-2xx total.
    statuses: dict[int, int] = field(default_factory=dict)
    # 2xx responses received before the planned end; requests still in
    # flight then may finish later and count only in ``requests``.
    ok_before_deadline: int = 0
    planned_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else math.nan


@dataclass
class Revocation:
    """One logout under load, timed in milliseconds.

    ``logout_ms`` is the logout request's own latency. ``visible_after_ms``
    runs from its response to the first 401 for the same cookie.
    """

    logout_status: int
    logout_ms: float
    visible_after_ms: float | None
    stale_polls: int
    under_load: bool


@dataclass
class MePhase:
    load: LoadResult
    revocations: list[Revocation]
    # % of one core per process during the load.
    cpu: dict[str, float]


@dataclass
class LoginPhase:
    flood: LoadResult
    logins_ok: int
    probe_idle: LoadResult
    probe_flood: LoadResult
    # % of one core per process during the flood.
    cpu: dict[str, float]
    # Seconds after the flood's last response until the servers went idle.
    busy_after_seconds: float

    @property
    def logins_per_second(self) -> float:
        """Successful logins per second within the planned flood duration."""
        flood = self.flood
        return flood.ok_before_deadline / flood.planned_seconds


@dataclass
class ScalingPhase:
    inserted: int
    insert_seconds: float
    before: LoadResult
    after: LoadResult
    # % of one core per process: idle and under load, before and after.
    cpu: dict[str, dict[str, float]]


@dataclass
class SystemResults:
    name: str
    settings: dict[str, str]
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
    # Hashes per second measured with one thread per core hashing at once.
    bcrypt_parallel_rate: float
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


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def describe_machine() -> dict[str, str]:
    return {
        "load average at start (1, 5, 15 min)": load_average(),
        "commit": command_output(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": memory_total_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": metadata.version("aiohttp"),
        "pyca/bcrypt": metadata.version("bcrypt"),
        "node": command_output(["node", "--version"]),
        "ferretdb": command_output([str(FERRETDB), "--version"]),
        "redis": command_output(["redis-server", "--version"]),
        "wrk": command_output(["wrk", "--version"]),
    }


def time_parallel_bcrypt(cost: int, threads: int, hashes: int) -> float:
    """Return hashes per second of ``threads`` threads hashing at ``cost`` at once.

    pyca/bcrypt releases the GIL while it hashes, so threads run in parallel.
    """
    salt = bcrypt.gensalt(cost)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as executor:
        list(
            executor.map(
                lambda _: bcrypt.hashpw(PASSWORD.encode(), salt), range(hashes)
            )
        )
    return hashes / (time.perf_counter() - started)


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
    """Return VmRSS and VmHWM (peak RSS) of a process in KiB, (0, 0) if it ended."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    for line in status.splitlines():
        parts = line.split()
        if parts and parts[0] in values:
            values[parts[0]] = int(parts[1])
    return values["VmRSS:"], values["VmHWM:"]


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds of a process, 0.0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # proc(5) puts utime and stime in fields 14 and 15. The command name in
    # field 2 may contain spaces, so fields are counted from the ")" after it.
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """Return the CPU seconds all cores spent outside idle and I/O wait since boot."""
    first_line = Path("/proc/stat").read_text().splitlines()[0]
    # proc(5) lists user, nice, system, idle, iowait, irq, softirq and steal
    # first. Guest time is already counted in user.
    values = [int(value) for value in first_line.split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds of processes by role and of the whole machine, with the time."""

    taken_at: float
    seconds: dict[str, float]
    machine_busy: float


def cpu_snapshot(pids: dict[str, int]) -> CpuSnapshot:
    seconds = {role: cpu_seconds(pid) for role, pid in pids.items()}
    return CpuSnapshot(time.monotonic(), seconds, machine_busy_seconds())


def phase_cpu(
    before: CpuSnapshot, after: CpuSnapshot, load: LoadResult | None
) -> dict[str, float]:
    """Return CPU use by process between two snapshots, in % of one core.

    The load generator's share comes from ``load``. "other" is what the
    machine spent beyond every listed process: other programs on the host.
    """
    wall = after.taken_at - before.taken_at
    usage = {
        role: 100 * (after.seconds[role] - used) / wall
        for role, used in before.seconds.items()
    }
    usage[LOAD_GENERATOR] = 100 * load.client_cpu_seconds / wall if load else 0.0
    machine = 100 * (after.machine_busy - before.machine_busy) / wall
    usage[OTHER_PROCESSES] = max(0.0, machine - sum(usage.values()))
    return usage


def children_cpu_seconds() -> float:
    """Return the CPU seconds of this process's children that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class System:
    """A running system under test: its base URL and server processes by role."""

    name: str
    base_url: str
    pids: dict[str, int]
    mongodb_url: str
    database: str
    # Settings passed to the servers, without addresses and secrets.
    settings: dict[str, str] = field(default_factory=dict)


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
    """Start FerretDB over SQLite and return its pid and MongoDB URL."""
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
    resources: contextlib.ExitStack,
    work: Path,
    urls: tuple[str, str],
    settings: dict[str, str],
) -> System:
    """Start identity, session and gateway, one process each, at bcrypt cost 12.

    ``urls`` are the MongoDB and Redis URLs. ``settings`` come on top of the
    test stack's environment.
    """
    mongodb_url, redis_url = urls
    stack = Stack(
        mongodb_url,
        redis_url,
        settings={
            **settings,
            "MFLIX_IDENTITY_BCRYPT_COST": str(DEFAULT_BCRYPT_COST),
        },
        name=OUR_DATABASE,
    )
    stack.log_dir = work / "logs"
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    resources.callback(stack.stop)
    stack.start()
    pids = {service: process.pid for service, process in stack.processes.items()}
    passed = {
        key: value
        for key, value in stack.environment.items()
        if key.startswith("MFLIX_")
        and not any(part in key for part in ("_PORT", "_URL", "TOKEN", "SECRET"))
    }
    return System(OURS, stack.url("gateway"), pids, mongodb_url, stack.database, passed)


def install_peer(source: Path, work: Path) -> Path | None:
    """Copy the peer into ``work`` and install its packages.

    Returns the copy's folder, or None when node, npm or the peer is missing.
    """
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
        {"AUTO_REMOVE": environment["AUTO_REMOVE"]},
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
    """Sign a user up, retrying a 503 up to twice with a new address.

    A 503 may be a timeout after the user was created, so a retry with the
    same address could return 409.
    """
    for attempt in range(3):
        address = email if attempt == 0 else email.replace("@", f"-retry{attempt}@")
        body = {"name": "Bench Viewer", "email": address, "password": PASSWORD}
        async with http.post(f"{base_url}/api/v1/signup", json=body) as response:
            text = await response.text()
            if response.status == 201:
                return User(address, cookie_header(response))
            if response.status != 503:
                break
        print(f"signup of {address} returned 503, retrying")
    raise RuntimeError(
        f"signup of {email} at {base_url} returned {response.status}: {text[:200]}"
    )


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
    # Seconds one request may take before it counts as a socket error.
    timeout: float = REQUEST_TIMEOUT


def nearest_rank(ascending: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ascending values, or NaN for none."""
    if not ascending:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ascending)))
    return ascending[rank - 1]


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    socket_errors: int = 0
    ok_before_deadline: int = 0


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
        tally.statuses[status] += 1
        if 200 <= status < 300 and time.monotonic() <= deadline:
            tally.ok_before_deadline += 1
        if spec.interval > latency:
            await asyncio.sleep(spec.interval - latency)


async def drive(spec: LoadSpec, *, delay: float = 0.0) -> LoadResult:
    """Run a load with an aiohttp client in the current event loop, after ``delay``."""
    await asyncio.sleep(delay)
    tally = _Tally()
    turns = itertools.count()
    cpu_started = time.process_time()
    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=spec.timeout)
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
        non_2xx=sum(
            count for status, count in tally.statuses.items() if status // 100 != 2
        ),
        socket_errors=tally.socket_errors,
        seconds=seconds,
        p50_ms=nearest_rank(latencies, 0.50) * 1000,
        p99_ms=nearest_rank(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else math.nan,
        client_cpu_seconds=time.process_time() - cpu_started,
        statuses=dict(sorted(tally.statuses.items())),
        ok_before_deadline=tally.ok_before_deadline,
        planned_seconds=spec.seconds,
    )


def load_worker(spec: LoadSpec) -> LoadResult:
    """Run one load in a worker process of the pool."""
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

    cpu_started = children_cpu_seconds()
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

    result = parse_wrk_output(stdout.decode(), stderr.decode())
    result.client_cpu_seconds = children_cpu_seconds() - cpu_started
    return result


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

    def __init__(
        self,
        options: Options,
        work: Path,
        pool: Executor,
        server_pids: dict[str, int],
    ) -> None:
        self.options = options
        self.work = work
        self.pool = pool
        # Every server process of both systems and this process (which runs
        # the probes), for CPU accounting.
        self.server_pids = server_pids
        self.cpu_pids = {**server_pids, "bench": os.getpid()}
        self.generator = resolve_generator(options.load_generator)

    async def settle(self) -> float:
        """Wait until the servers are idle again and return the seconds waited.

        Idle means that all servers together use less than SETTLED_CPU_PERCENT
        of one core over SETTLE_WINDOW. The wait ends after SETTLE_LIMIT.
        """
        started = time.monotonic()
        while time.monotonic() - started < SETTLE_LIMIT:
            before = cpu_snapshot(self.server_pids)
            await asyncio.sleep(SETTLE_WINDOW)
            after = cpu_snapshot(self.server_pids)
            used = sum(after.seconds.values()) - sum(before.seconds.values())
            if 100 * used / (after.taken_at - before.taken_at) < SETTLED_CPU_PERCENT:
                break
        return time.monotonic() - started

    async def idle_cpu(self, seconds: float = IDLE_SAMPLE_SECONDS) -> dict[str, float]:
        """Return the CPU use of every process over ``seconds`` without load."""
        before = cpu_snapshot(self.cpu_pids)
        await asyncio.sleep(seconds)
        return phase_cpu(before, cpu_snapshot(self.cpu_pids), None)

    async def measured_load_me(
        self, system: System, cookies: Sequence[str], seconds: int
    ) -> tuple[LoadResult, dict[str, float]]:
        """Run load_me and return its result with the CPU use during it."""
        before = cpu_snapshot(self.cpu_pids)
        load = await self.load_me(system, cookies, seconds)
        return load, phase_cpu(before, cpu_snapshot(self.cpu_pids), load)

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
    """Log out with ``cookie``, then poll /me with it until it returns 401."""
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
    await bench.settle()
    before = cpu_snapshot(bench.cpu_pids)
    async with asyncio.TaskGroup() as group:
        load_task = group.create_task(bench.load_me(system, cookies, seconds))
        revocations_task = group.create_task(
            revoke_during_load(system.base_url, revoked, seconds)
        )
    load = load_task.result()
    cpu = phase_cpu(before, cpu_snapshot(bench.cpu_pids), load)
    return MePhase(load, revocations_task.result(), cpu)


def probe_spec(system: System, cookie: str, seconds: float) -> LoadSpec:
    url = f"{system.base_url}/api/v1/me"
    return LoadSpec(
        requests=[RequestSpec("GET", url, cookie=cookie)],
        concurrency=1,
        seconds=seconds,
        interval=PROBE_INTERVAL,
    )


def login_flood_spec(
    system: System, users: Sequence[User], concurrency: int, seconds: float
) -> LoadSpec:
    """Return a load of logins with correct passwords, the users taking turns."""
    url = f"{system.base_url}/api/v1/login"
    return LoadSpec(
        requests=[
            RequestSpec("POST", url, body={"email": user.email, "password": PASSWORD})
            for user in users
        ],
        concurrency=concurrency,
        seconds=seconds,
        timeout=LOGIN_TIMEOUT,
    )


async def login_phase(
    bench: Bench, system: System, users: Sequence[User], probe_cookie: str
) -> LoginPhase:
    """Flood logins with correct passwords while one user keeps calling /me."""
    options = bench.options
    await bench.settle()
    probe_idle = await drive(probe_spec(system, probe_cookie, options.probe_seconds))
    flood_spec = login_flood_spec(system, users, options.concurrency, options.duration)
    probe_seconds = max(1.0, options.duration - 2 * FLOOD_MARGIN)
    before = cpu_snapshot(bench.cpu_pids)
    async with asyncio.TaskGroup() as group:
        flood_task = group.create_task(drive_in_process(bench.pool, flood_spec))
        probe_task = group.create_task(
            drive(
                probe_spec(system, probe_cookie, probe_seconds),
                delay=FLOOD_MARGIN,
            )
        )
    flood, probe_flood = flood_task.result(), probe_task.result()
    cpu = phase_cpu(before, cpu_snapshot(bench.cpu_pids), flood)
    busy_after = await bench.settle()
    logins_ok = flood.requests - flood.non_2xx
    return LoginPhase(flood, logins_ok, probe_idle, probe_flood, cpu, busy_after)


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
    """Measure /me before and after extra sessions, as many for every system.

    mflix-auth goes first. Its processes are paused (SIGSTOP) while the
    peer is measured, so that background work on its own extra sessions
    does not slow the peer down.
    """
    options = bench.options
    results: dict[str, ScalingPhase] = {}
    target = options.extra_sessions
    ours_pids = [
        pid for system in systems if system.name == OURS for pid in system.pids.values()
    ]
    for system in systems:
        pause = paused(ours_pids) if system.name != OURS else contextlib.nullcontext()
        with pause:
            results[system.name] = await scaling_phase(
                bench, system, cookies[system.name], target
            )
        # The next system gets the count the first could insert in time.
        target = results[system.name].inserted
    return results


async def scaling_phase(
    bench: Bench, system: System, cookies: Sequence[str], count: int
) -> ScalingPhase:
    seconds = bench.options.scaling_duration
    cpu: dict[str, dict[str, float]] = {}
    await bench.settle()
    cpu["idle before"] = await bench.idle_cpu()
    before, cpu["/me before"] = await bench.measured_load_me(system, cookies, seconds)
    inserted, took = await asyncio.to_thread(
        insert_sessions, system, count, bench.options.insert_seconds
    )
    await bench.settle()
    cpu["idle after"] = await bench.idle_cpu()
    after, cpu["/me after"] = await bench.measured_load_me(system, cookies, seconds)
    return ScalingPhase(inserted, took, before, after, cpu)


@contextlib.contextmanager
def paused(pids: Sequence[int]) -> Iterator[None]:
    """Suspend processes with SIGSTOP for the block, and resume them after it."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


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
    """Summarize collapsed stacks as text lines.

    "self" lines rank the functions on top of the stack, and "incl" lines
    rank the project's own functions by the samples they appear in.
    """
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
    own_code = [
        (frame, count)
        for frame, count in inclusive.most_common()
        if "(services/" in frame and "__main__" not in frame
    ]
    lines += [
        f"  incl {count / total:6.1%}  {frame}" for frame, count in own_code[:top]
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
    flood_spec = login_flood_spec(ours, users, bench.options.concurrency, seconds + 2)
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
    if met is None:
        return "n/a"
    return "met" if met else "missed"


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
                status_summary(logins.flood),
                number(logins.flood.p50_ms, 0),
                number(logins.flood.p99_ms, 0),
                number(logins.busy_after_seconds, 1),
            ]
        )
    header = [
        "system",
        "logins/s",
        "of bcrypt limit",
        "ok / answered",
        "statuses",
        "login p50 (ms)",
        "login p99 (ms)",
        "servers busy after the flood (s)",
    ]
    return table(header, rows)


def status_summary(load: LoadResult) -> str:
    parts = [f"{count} x {status}" for status, count in load.statuses.items()]
    if load.socket_errors:
        parts.append(f"{load.socket_errors} x no response")
    return ", ".join(parts) or "n/a"


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


def cpu_phases(report: Report) -> list[tuple[str, dict[str, float]]]:
    """Return the CPU use of every measured phase, labelled, grouped by system."""
    phases: list[tuple[str, dict[str, float]]] = []
    for system in report.systems.values():
        if system.me is not None:
            phases.append((f"{system.name}, /me load", system.me.cpu))
        if system.logins is not None:
            phases.append((f"{system.name}, login flood", system.logins.cpu))
        if system.scaling is not None:
            for label, cpu in system.scaling.cpu.items():
                phases.append((f"{system.name}, {label} extra sessions", cpu))
    return phases


def cpu_table(report: Report) -> str:
    phases = cpu_phases(report)
    roles = list(dict.fromkeys(role for _, cpu in phases for role in cpu))
    rows = [
        [
            label,
            *(number(cpu.get(role), 0) for role in roles),
            number(sum(cpu.values()), 0),
        ]
        for label, cpu in phases
    ]
    return table(["phase", *roles, "total"], rows)


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
        f"({machine['cores']} cores / hash time); measured with "
        f"{machine['cores']} threads hashing at once: "
        f"{report.bcrypt_parallel_rate:.2f} hashes/s",
        f"- options: {json.dumps(report.options)}",
        *(
            f"- {name} settings: {json.dumps(system.settings)}"
            for name, system in report.systems.items()
        ),
        "\n## GET /api/v1/me under load\n",
        me_table(report),
        "\n## Logout under that load\n",
        revocation_table(report),
        "\n## Login flood\n",
        login_table(report),
        "\n## /me latency of one user, idle and during the login flood\n",
        probe_table(report),
        "\n## CPU use (% of one core; all cores give "
        f"{100 * (os.cpu_count() or 1)}%)\n",
        cpu_table(report),
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
    """Run every phase on every system and fill ``report`` in."""
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

    if options.profile_dir is not None:
        # Before the extra sessions, so profiles show the common case.
        ours = next(system for system in systems if system.name == OURS)
        await profile_ours(bench, ours, users[OURS], options.profile_dir)

    if options.extra_sessions > 0:
        print(f"inserting up to {options.extra_sessions:,} sessions per system")
        live = {
            name: [user.cookie for user in items[options.revocations :]]
            for name, items in users.items()
        }
        scaling = await scaling_phases(bench, systems, live)
        for name, phase in scaling.items():
            report.systems[name].scaling = phase
    report.notes.extend(contention_notes(report))


def contention_notes(report: Report) -> list[str]:
    """Return a note on the phases in which other programs used much CPU."""
    busy = [
        f"{label} ({cpu[OTHER_PROCESSES]:.0f}%)"
        for label, cpu in cpu_phases(report)
        if cpu.get(OTHER_PROCESSES, 0.0) >= OTHER_CPU_NOTE_PERCENT
    ]
    if not busy:
        return []
    return [
        "Other programs on this machine used at least "
        f"{OTHER_CPU_NOTE_PERCENT:.0f}% of one core during: "
        + ", ".join(busy)
        + ". Those phases had less CPU than the others."
    ]


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


def start_servers(
    resources: contextlib.ExitStack, options: Options, work: Path
) -> tuple[list[System], dict[str, int]]:
    """Start FerretDB, Redis, our services and the peer (when it can be installed).

    Returns the systems under test and the pids of the shared databases.
    """
    peer_dir = install_peer(options.peer_dir, work) if options.peer_dir else None
    print(f"starting FerretDB, Redis and the services in {work}")
    ferretdb_pid, mongodb_url = start_ferretdb(resources, work / "ferretdb")
    redis_pid, redis_url = start_redis(resources, work / "redis")
    urls = (mongodb_url, redis_url)
    systems = [start_ours(resources, work, urls, options.settings)]
    if peer_dir is not None:
        systems.append(start_peer(resources, peer_dir, mongodb_url))
    return systems, {"ferretdb": ferretdb_pid, "redis": redis_pid}


def new_report(
    machine: dict[str, str],
    hash_seconds: float,
    parallel_rate: float,
    options: Options,
    systems: Sequence[System],
    bench: Bench,
) -> Report:
    local_paths = {"peer_dir", "work_dir", "json_path", "profile_dir"}
    return Report(
        machine=machine,
        options={
            key: value
            for key, value in asdict(options).items()
            if key not in local_paths
        },
        bcrypt_seconds=hash_seconds,
        bcrypt_limit=(os.cpu_count() or 1) / hash_seconds,
        bcrypt_parallel_rate=parallel_rate,
        systems={
            system.name: SystemResults(system.name, system.settings)
            for system in systems
        },
        notes=default_notes(bench),
    )


def run(options: Options) -> Report:
    with contextlib.ExitStack() as resources:
        machine = describe_machine()
        print(f"timing bcrypt at cost {DEFAULT_BCRYPT_COST}")
        hash_seconds = time_bcrypt(DEFAULT_BCRYPT_COST)
        cores = os.cpu_count() or 1
        parallel_rate = time_parallel_bcrypt(DEFAULT_BCRYPT_COST, cores, 4 * cores)

        work = work_directory(resources, options)
        if options.profile_dir is not None:
            options.profile_dir.mkdir(parents=True, exist_ok=True)
        systems, shared_pids = start_servers(resources, options, work)
        pool = start_pool(resources)
        server_pids = {
            **{role: pid for system in systems for role, pid in system.pids.items()},
            **shared_pids,
        }
        bench = Bench(options, work, pool, server_pids)

        report = new_report(
            machine, hash_seconds, parallel_rate, options, systems, bench
        )
        asyncio.run(measure(bench, systems, shared_pids, report))
        report.machine["load average at end (1, 5, 15 min)"] = load_average()
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
