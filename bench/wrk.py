"""The wrk load generator of the /me phases, used when wrk is installed.

wrk needs far less CPU than a Python client, which matters because every
load generator shares the machine's cores with the servers. wrk is
optional: without it the /me load comes from the aiohttp generator.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.load import REQUEST_TIMEOUT
from bench.options import Options
from bench.processes import children_cpu_seconds, wait_bounded
from bench.results import LoadResult

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
    stdout, stderr = await wait_bounded(process.communicate(), [process], seconds)

    result = parse_wrk_output(stdout.decode(), stderr.decode())
    result.client_cpu_seconds = children_cpu_seconds() - cpu_started
    return result


def parse_wrk_output(stdout: str, stderr: str) -> LoadResult:
    """Read the result line that WRK_SCRIPT prints; raise when it is missing."""
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
