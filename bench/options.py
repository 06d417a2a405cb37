"""Command-line options of the benchmark, with their bounds."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.systems import DEFAULT_BCRYPT_COST
from tests.support.processes import ROOT


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
