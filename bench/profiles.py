"""py-spy profiles of our services under the /me load and the login flood.

Profiles are optional (``--profile-dir``) and need py-spy, installed with
``.venv/bin/pip install py-spy``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.harness import Bench
from bench.load import drive_in_process
from bench.login_flood import login_flood_spec
from bench.processes import wait_bounded
from bench.systems import System, User, live_cookies

# Samples per second of py-spy.
SAMPLE_RATE = 200


def find_py_spy() -> str | None:
    """Return the py-spy beside this Python, else the one on PATH, else None."""
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
            f"--rate={SAMPLE_RATE}",
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
    waits = asyncio.gather(*(process.wait() for process in processes))
    await wait_bounded(waits, processes, seconds)
    return [output for output in outputs if output.exists()]


def summarize_profile(path: Path, top: int = 12) -> list[str]:
    """Summarize collapsed stacks as text lines.

    "self" lines rank the functions on top of the stack, and "incl" lines
    rank the project's own functions by the samples they appear in.
    """
    own, inclusive = count_samples(path)
    total = own.total()
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


def count_samples(path: Path) -> tuple[Counter[str], Counter[str]]:
    """Count the samples of a collapsed-stack file by frame.

    Returns the samples with each frame on top of the stack, and the samples
    whose stack contains each frame anywhere.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return own, inclusive


async def profile_ours(
    bench: Bench, ours: System, users: Sequence[User], out_dir: Path
) -> None:
    """Profile the services under a /me load, then under a login flood."""
    py_spy = find_py_spy()
    if py_spy is None:
        print("SKIP profiles: py-spy is missing (.venv/bin/pip install py-spy)")
        return
    seconds = bench.options.profile_seconds
    live = live_cookies(users, bench.options.revocations)
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
