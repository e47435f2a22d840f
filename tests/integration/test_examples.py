"""The examples as a user runs them, each in a fresh interpreter, so a broken import fails here.

``quickstart.py`` runs end to end against its built-in loopback capture server. The framework
apps are imported (and driven in-process through their frameworks' test clients, which need no
socket); no server is started and nothing leaves 127.0.0.1: the environment carries no PostHog
API key, so the instrumented apps keep their events in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.procs import ROOT

EXAMPLES = ROOT / "examples"
DEPRECATED = ("posthog_otel.contexts", "posthog_otel.baggage", "posthog_otel.capture_server")

# Appended to every snippet: the examples use the current import paths, not the deprecated
# aliases (which would still import, with a DeprecationWarning nobody sees).
_NO_ALIASES = f"""
import sys
_aliases = [name for name in {DEPRECATED!r} if name in sys.modules]
assert not _aliases, f"an example imports a deprecated alias: {{_aliases}}"
print("IMPORTS OK")
"""


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without PostHog/OpenTelemetry settings, the project importable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTHOG_", "OTEL_", "DJANGO_", "CELERY_"))
    }
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def _run(args: list[str], timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _run_snippet(code: str, **env: str) -> str:
    result = _run(["-c", textwrap.dedent(code) + _NO_ALIASES], **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("IMPORTS OK"), result.stdout + result.stderr
    return result.stdout


def test_every_example_is_covered() -> None:
    """A new example must get a check here."""
    found = {p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.py")}
    assert found == {
        "quickstart.py",
        "fastapi_app.py",
        "flask_app.py",
        "celery_app.py",
        "django_app/__init__.py",
        "django_app/asgi.py",
        "django_app/manage.py",
        "django_app/settings.py",
        "django_app/urls.py",
        "llm/assistant.py",
    }


def test_quickstart_runs_and_reports_every_event() -> None:
    result = _run([str(EXAMPLES / "quickstart.py")])
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert (
        "OK: {'order_completed': 1, 'receipt_sent': 1, '$exception': 1}, person ok=True, "
        "session ok=True, tags ok=True" in out
    ), out
    assert "$exception: ValueError: card declined for amount 500" in out
    assert "in charge_card:" in out  # the raising frame, with its source line
    rows = [line.split() for line in out.splitlines() if line.startswith(("order_", "receipt_"))]
    assert [row[:3] for row in rows] == [
        ["order_completed", "user-42", "session-7"],
        ["receipt_sent", "user-42", "session-7"],
    ]
    assert rows[0][3] == rows[1][3]  # the worker thread's event is in the request's trace


def test_llm_example_attributes_each_generation_to_its_user() -> None:
    result = _run([str(EXAMPLES / "llm" / "assistant.py")])
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert out.rstrip().endswith("OK"), out
    people = [line.split()[1] for line in out.splitlines() if line.startswith("$ai_generation")]
    assert people == ["person=user-42", "person=user-9"], out


def test_fastapi_app_imports_and_serves_in_process() -> None:
    out = _run_snippet(
        """
        from fastapi.testclient import TestClient

        from examples.fastapi_app import app

        client = TestClient(app, raise_server_exceptions=False)
        headers = {"X-POSTHOG-DISTINCT-ID": "user-1", "X-POSTHOG-SESSION-ID": "s-1"}
        response = client.get("/checkout", headers=headers)
        assert response.status_code == 200 and response.json() == {"status": "paid"}, response.text
        assert client.get("/fail", headers=headers).status_code == 500
        print("FASTAPI OK")
        """
    )
    assert "FASTAPI OK" in out


def test_flask_app_imports_and_serves_in_process() -> None:
    out = _run_snippet(
        """
        from examples.flask_app import app

        client = app.test_client()
        response = client.get("/checkout", headers={"X-POSTHOG-DISTINCT-ID": "user-1"})
        assert response.status_code == 200, response.data
        assert response.get_json() == {"status": "paid", "user": "user-1"}, response.data
        assert client.get("/receipt").data == b"thank you\\n"
        print("FLASK OK")
        """
    )
    assert "FLASK OK" in out


def test_celery_app_imports_and_enqueues_to_its_folder(tmp_path: Path) -> None:
    queue = tmp_path / "queue"
    result = _run(["-m", "examples.celery_app"], CELERY_QUEUE_DIR=str(queue))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"enqueued 3 tasks in {queue}" in result.stdout
    assert len([p for p in queue.iterdir() if p.is_file()]) == 3  # kombu's filesystem broker

    out = _run_snippet(
        """
        from examples.celery_app import app, charge, send_receipt

        assert {"examples.send_receipt", "examples.charge"} <= set(app.tasks)
        assert (send_receipt.name, charge.name) == ("examples.send_receipt", "examples.charge")
        """,
        CELERY_QUEUE_DIR=str(tmp_path / "unused"),
    )
    assert "IMPORTS OK" in out


def test_django_project_imports_and_serves_in_process() -> None:
    settings = "examples.django_app.settings"
    out = _run_snippet(
        """
        import asyncio
        import json

        from examples.django_app import settings, urls
        from examples.django_app.asgi import application  # loads every MIDDLEWARE entry

        from django.test import Client
        from django.test.utils import setup_test_environment

        setup_test_environment()  # what Django's test runner does: the test client's host
        client = Client(HTTP_X_POSTHOG_DISTINCT_ID="user-1", raise_request_exception=False)
        response = client.get("/checkout/")
        assert response.status_code == 200, response.content
        assert response.json() == {"status": "paid", "user": "user-1"}, response.content
        assert client.get("/fail/").status_code == 500
        assert {p.pattern._route for p in urls.urlpatterns} >= {"checkout/", "health/"}

        async def asgi_get(path: str) -> tuple[int, bytes]:  # through asgi.py's application
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
                "headers": [(b"host", b"127.0.0.1"), (b"x-posthog-distinct-id", b"user-2")],
            }
            sent: list[dict] = []
            requests = [{"type": "http.request", "body": b"", "more_body": False}]

            async def receive() -> dict:
                if requests:
                    return requests.pop()
                await asyncio.Event().wait()  # no disconnect: Django cancels this when done
                raise AssertionError("unreachable")

            async def send(message: dict) -> None:
                sent.append(message)

            await application(scope, receive, send)
            body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
            return sent[0]["status"], body

        status, body = asyncio.run(asgi_get("/recommendations/"))
        assert status == 200 and json.loads(body)["user"] == "user-2", (status, body)
        print("DJANGO OK")
        """,
        DJANGO_SETTINGS_MODULE=settings,
    )
    assert "DJANGO OK" in out

    check = _run([str(EXAMPLES / "django_app" / "manage.py"), "check"])
    assert check.returncode == 0, check.stdout + check.stderr
    assert "System check identified no issues" in check.stdout
