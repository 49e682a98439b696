"""/detect under `wrk` (Debian's package), a load generator that is not ours, beside bench/http_load.py.

One wrk thread (`-t1`): on 2 cores the load generator shares the machine with the server, and one
thread disturbs it least. A Lua script posts the texts in turn and prints the latency percentiles and
the error counts as one JSON line when the run ends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

SCRIPT = r"""
local texts = %(texts)s
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/detect", {["Content-Type"] = "application/json"},
                    '{"text": ' .. texts[(i %% #texts) + 1] .. '}')
end
local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "seconds": %%.6f, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d, '
    .. '"connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, "timeouts": %%d, "status_errors": %%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
"""


def missing() -> str | None:
    """Why wrk cannot run here, or None."""
    return None if shutil.which("wrk") else "wrk is not installed (apt-get install wrk)"


def lua_script(texts: list[str]) -> str:
    quoted = ", ".join(_lua_string(json.dumps(t, ensure_ascii=True)) for t in texts)
    return SCRIPT % {"texts": "{" + quoted + "}"}


def _lua_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_wrk(url: str, concurrency: int, seconds: float, texts: list[str]) -> dict:
    """`wrk -t1 -c{concurrency} -d{seconds}s` against POST /detect; req/s counts 200 answers only."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "detect.lua"
        script.write_text(lua_script(texts))
        result = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s", str(script), url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {(result.stdout + result.stderr)[-1000:]}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"] + raw["status_errors"]
    ok = max(0, raw["requests"] - raw["status_errors"])
    return {
        "tool": "wrk -t1",
        "route": "/detect",
        "concurrency": concurrency,
        "requests": raw["requests"],
        "errors": errors,
        "seconds": raw["seconds"],
        "rps": ok / raw["seconds"],
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "error_kinds": {
            k: raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "status_errors") if raw[k]
        },
    }
