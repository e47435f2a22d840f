"""The client imports ``requests`` on its first send, and a ``fork`` never cuts that import in
half (a pre-forked server's master may be sending its first batch when it forks workers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_BUILT_NOT_SENT = """
import json, sys
from posthog_otel import Client
client = Client(api_key="phc_test", host="http://127.0.0.1:9", flush_interval=3600)
client.capture("queued", distinct_id="u1")
print(json.dumps({"requests": "requests" in sys.modules}))
"""

_INSTRUMENTED_NOT_SENT = """
import json, logging, sys
from opentelemetry import trace
from posthog_otel import PosthogInstrumentor
PosthogInstrumentor().instrument(
    api_key="phc_test", host="http://127.0.0.1:9", flush_interval=3600, traces=True, logs=True
)
with trace.get_tracer("t").start_as_current_span("work"):
    logging.getLogger("app").warning("logged")
print(json.dumps({"requests": "requests" in sys.modules}))
"""

# A thread starts the first import; the main thread forks as soon as that import is under way
# (its half-initialised module is in sys.modules). The child must find requests whole and
# usable at once, not a module lock held by a thread that does not exist there.
_FORK_MID_IMPORT = """
import json, os, sys, threading, time
from posthog_otel.delivery import _http
threading.Thread(target=_http.load, daemon=True).start()
deadline = time.monotonic() + 10
while "urllib3" not in sys.modules and time.monotonic() < deadline:
    pass
mid_import = "urllib3" in sys.modules and _http._loaded is None
pid = os.fork()
if pid == 0:
    import signal
    signal.alarm(10)  # a held import lock would hang here: SIGALRM kills the child
    http = _http.load()
    ok = hasattr(http.requests, "Session") and hasattr(http, "DeadlineSession")
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(json.dumps({"mid_import": mid_import, "child_status": status}))
"""


def _run(script: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_building_a_client_and_capturing_does_not_import_requests() -> None:
    assert _run(_BUILT_NOT_SENT) == {"requests": False}


def test_instrumenting_with_traces_and_logs_does_not_import_requests() -> None:
    assert _run(_INSTRUMENTED_NOT_SENT) == {"requests": False}


def test_a_fork_during_the_first_import_leaves_the_child_a_whole_requests() -> None:
    result = _run(_FORK_MID_IMPORT)
    assert result["mid_import"] is True  # the fork really was asked for mid-import
    assert result["child_status"] == 0
