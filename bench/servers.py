"""Start the servers of a run: FerretDB, Redis, our services and the peer.

Every server listens on a free port of 127.0.0.1. Each start registers the
server's stop with an ExitStack before anything can fail, so leaving the
stack stops every process that was started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.options import Options
from bench.systems import (
    DEFAULT_BCRYPT_COST,
    OUR_DATABASE,
    OURS,
    PEER,
    PEER_DATABASE,
    System,
)
from tests.support.processes import (
    Stack,
    ferretdb_command,
    free_port,
    redis_command,
    stop,
    wait_for_port,
    with_database,
)


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
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = ferretdb_command(directory, port)
    process = launch(resources, command, directory / "ferretdb.log")
    wait_for_port(port)
    return process.pid, f"mongodb://127.0.0.1:{port}/{OUR_DATABASE}"


def start_redis(resources: contextlib.ExitStack, directory: Path) -> tuple[int, str]:
    """Start Redis with the append-only file on, as in production."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = launch(resources, redis_command(directory, port), directory / "redis.log")
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
    """Start the installed peer on a free port, with a database of its own."""
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
