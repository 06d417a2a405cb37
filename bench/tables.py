"""Markdown tables of one run's results, one function per table."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.me_load import REVOCATION_WAIT_LIMIT
from bench.results import LoadResult, Report, Revocation, ScalingPhase
from bench.systems import OURS, PEER

KIB_PER_MIB = 1024


def number(value: float | None, digits: int = 1) -> str:
    """Format a number with thousands separators, or "n/a" for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def quotient(ours: float | None, peer: float | None) -> float | None:
    """Return ours / peer, or None when either is missing, zero or NaN."""
    if not ours or not peer or math.isnan(ours) or math.isnan(peer):
        return None
    return ours / peer


def ratio(ours: float | None, peer: float | None) -> str:
    """Format ours / peer with two decimals, or "n/a"."""
    value = quotient(ours, peer)
    return "n/a" if value is None else f"{value:.2f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def me_load(report: Report, name: str) -> LoadResult | None:
    """Return the /me phase's load of one system, None when it did not run."""
    system = report.systems.get(name)
    return system.me.load if system and system.me else None


def me_table(report: Report) -> str:
    ours, peer = me_load(report, OURS), me_load(report, PEER)

    def row(label: str, name: str, digits: int, compare: bool) -> list[str]:
        cells = [
            number(getattr(load, name), digits) if load else "n/a"
            for load in (ours, peer)
        ]
        if not compare:
            return [label, *cells, ""]
        if ours is None or peer is None:
            return [label, *cells, "n/a"]
        return [label, *cells, ratio(getattr(ours, name), getattr(peer, name))]

    rows = [
        row("requests/s", "rate", 1, compare=True),
        row("p50 latency (ms)", "p50_ms", 2, compare=True),
        row("p99 latency (ms)", "p99_ms", 2, compare=True),
        row("max latency (ms)", "max_ms", 1, compare=False),
        row("responses", "requests", 0, compare=False),
        row("non-2xx responses", "non_2xx", 0, compare=False),
        row("socket errors", "socket_errors", 0, compare=False),
    ]
    return table(["GET /api/v1/me", OURS, PEER, "ours/peer"], rows)


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
                    _visible_after(item),
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


def _visible_after(item: Revocation) -> str:
    if item.visible_after_ms is None:
        return f"not within {REVOCATION_WAIT_LIMIT:.0f} s"
    return number(item.visible_after_ms, 1)


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
    """Return the responses by status, such as "88 x 200, 12 x 503"."""
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
                f"{flood.failed} / {flood.requests}",
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
            rows.append([system.name, role, mib(rss), mib(peak)])
    return table(["system", "process", "RSS (MiB)", "peak RSS (MiB)"], rows)


def mib(kib: float) -> str:
    return number(kib / KIB_PER_MIB)


def total_rss_kib(memory_kib: dict[str, tuple[int, int]]) -> int:
    """Return the summed VmRSS of processes read by ``rss_by_role``."""
    return sum(rss for rss, _ in memory_kib.values())


def scaling_table(report: Report) -> str:
    rows = []
    for system in report.systems.values():
        if system.scaling is not None:
            rows += _scaling_rows(system.name, system.scaling)
    header = [
        "system",
        "extra sessions",
        "requests/s",
        "p50 (ms)",
        "p99 (ms)",
        "failed",
        "RSS of the servers (MiB)",
    ]
    return table(header, rows)


def _scaling_rows(name: str, scaling: ScalingPhase) -> list[list[str]]:
    stages = (
        ("before", scaling.before, scaling.memory_kib_before),
        ("after", scaling.after, scaling.memory_kib_after),
    )
    rows = [
        [
            name,
            label,
            number(load.rate),
            number(load.p50_ms, 2),
            number(load.p99_ms, 2),
            str(load.failed),
            mib(total_rss_kib(memory)) if memory else "n/a",
        ]
        for label, load, memory in stages
    ]
    inserted = f"inserted {scaling.inserted:,} in {scaling.insert_seconds:.1f} s"
    rows.append([name, inserted, "", "", "", "", ""])
    return rows
