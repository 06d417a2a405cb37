"""The report of one run: targets, notes, the Markdown text and the JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from bench.machine import core_count
from bench.processes import OTHER_PROCESSES
from bench.results import MePhase, Report, ScalingPhase
from bench.systems import DEFAULT_BCRYPT_COST, OURS, PEER
from bench.tables import (
    cpu_phases,
    cpu_table,
    login_table,
    me_table,
    memory_table,
    probe_table,
    quotient,
    revocation_table,
    scaling_table,
    table,
    total_rss_kib,
)

# Other programs using this much of one core (in %) during a phase get a note.
OTHER_CPU_NOTE_PERCENT = 20.0
# Largest after/before ratio of /me latency and server RSS that counts as no
# noticeable change with many stored sessions. Two single runs of the same
# phase have differed by up to 20%.
NOTICEABLE_CHANGE = 1.2


def verdict(met: bool | None) -> str:
    if met is None:
        return "n/a"
    return "met" if met else "missed"


def times(value: float | None) -> str:
    """Format a ratio such as "3.12x", or "n/a"."""
    return "n/a" if value is None else f"{value:.2f}x"


def targets(report: Report) -> list[tuple[str, str, str]]:
    """Return each target with the measured value and whether it was met."""
    ours, peer = report.systems.get(OURS), report.systems.get(PEER)
    rows: list[tuple[str, str, str]] = []
    if ours and ours.me and peer and peer.me:
        rows += _me_targets(ours.me, peer.me)
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
    if ours and ours.scaling:
        rows.append(_stored_sessions_target(ours.scaling))
    return rows


def _me_targets(ours: MePhase, peer: MePhase) -> list[tuple[str, str, str]]:
    throughput = quotient(ours.load.rate, peer.load.rate)
    tail = quotient(ours.load.p99_ms, peer.load.p99_ms)
    return [
        (
            "/me throughput >= 3x peer",
            times(throughput),
            verdict(None if throughput is None else throughput >= 3),
        ),
        (
            "/me p99 <= 0.5x peer",
            times(tail),
            verdict(None if tail is None else tail <= 0.5),
        ),
    ]


def _stored_sessions_target(scaling: ScalingPhase) -> tuple[str, str, str]:
    """Compare /me latency and server RSS after the extra sessions with before."""
    changes = {
        "p50": quotient(scaling.after.p50_ms, scaling.before.p50_ms),
        "p99": quotient(scaling.after.p99_ms, scaling.before.p99_ms),
        "RSS": quotient(
            total_rss_kib(scaling.memory_kib_after),
            total_rss_kib(scaling.memory_kib_before),
        ),
    }
    measured = ", ".join(f"{name} {times(value)}" for name, value in changes.items())
    known = [value for value in changes.values() if value is not None]
    met = None if len(known) < len(changes) else max(known) <= NOTICEABLE_CHANGE
    return (
        f"{scaling.inserted:,} extra sessions change /me p50, p99 and RSS "
        f"by at most {NOTICEABLE_CHANGE:.1f}x",
        measured,
        verdict(met),
    )


def default_notes(generator: str) -> list[str]:
    """Return the limits that apply to every run."""
    cores = core_count()
    return [
        f"The load generator ({generator} for /me, aiohttp for logins) runs "
        f"on the same {cores} cores as every server, so all numbers include that "
        "competition.",
        "Both systems use one FerretDB 1.24.2 (SQLite handler) instead of "
        "MongoDB, each with its own database.",
        "Every service and the peer run as a single process; the gateway caches "
        "a resolved session for up to 1 s (MFLIX_GATEWAY_CACHE_TTL default).",
    ]


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


def render(report: Report) -> str:
    """Return the whole report as Markdown."""
    sections = [
        *_machine_section(report),
        "\n## GET /api/v1/me under load\n",
        me_table(report),
        "\n## Logout under that load\n",
        revocation_table(report),
        "\n## Login flood\n",
        login_table(report),
        "\n## /me latency of one user, idle and during the login flood\n",
        probe_table(report),
        f"\n## CPU use (% of one core; all cores give {100 * core_count()}%)\n",
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


def _machine_section(report: Report) -> list[str]:
    machine = report.machine
    return [
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
    ]


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(asdict(report), indent=2) + "\n")
