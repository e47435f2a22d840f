"""``PosthogInstrumentor().instrument()`` imports no instrumented library; the app's import does.

Each test runs a fresh interpreter, since an import cannot be undone in this one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# requests (and urllib3) are not listed: the client's own transport sends with them
LIBRARIES = (
    "django",
    "celery",
    "kombu",
    "httpx",
    "httpcore",
    "starlette",
    "fastapi",
    "pydantic",
    "trio",
    "aiohttp",
)

_PRELUDE = """
import json, sys
import flask
import posthog_otel
from posthog_otel.instrumentor import PosthogInstrumentor

PosthogInstrumentor().instrument(api_key="phc_test", host="http://127.0.0.1:9", send=False)
LIBRARIES = {libraries!r}
before = sorted(name for name in LIBRARIES if name in sys.modules)

app = flask.Flask("app")

@app.get("/")
def index():
    return posthog_otel.get_context_distinct_id() or ""

flask_answer = app.test_client().get("/", headers={{"X-POSTHOG-DISTINCT-ID": "user-1"}}).text
"""


def _run(body: str) -> dict[str, object]:
    script = textwrap.dedent(_PRELUDE.format(libraries=LIBRARIES)) + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_flask_app_imports_no_other_library_and_is_instrumented() -> None:
    result = _run(
        """
        print(json.dumps({"before": before, "flask": flask_answer,
                          "after": sorted(n for n in LIBRARIES if n in sys.modules)}))
        """
    )
    assert result == {"before": [], "flask": "user-1", "after": []}


def test_libraries_imported_afterwards_are_instrumented() -> None:
    result = _run(
        """
        import asyncio

        import fastapi
        from fastapi import FastAPI
        from posthog_otel.instrumentors.asgi import PosthogASGIMiddleware

        api = FastAPI()

        @api.get("/")
        async def root():
            return {"id": posthog_otel.get_context_distinct_id()}

        async def call_api():
            import httpx
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                answer = await c.get("/", headers={"X-POSTHOG-DISTINCT-ID": "user-2"})
            return answer.json()["id"]

        fastapi_answer = asyncio.run(call_api())

        import aiohttp
        import httpcore
        import requests
        import django.core.handlers.base
        import django.core.handlers.asgi
        import celery.signals

        def wrapped(attribute):
            return hasattr(attribute, "__wrapped__")

        receivers = [str(r) for r in celery.signals.before_task_publish.receivers]
        print(json.dumps({
            "before": before,
            "fastapi": fastapi_answer,
            "fastapi_middleware": any(
                getattr(m, "cls", None) is PosthogASGIMiddleware for m in api.user_middleware
            ),
            "requests": wrapped(requests.adapters.HTTPAdapter.__dict__["send"]),
            "aiohttp": wrapped(aiohttp.ClientRequest.__dict__["send"]),
            "httpcore": wrapped(httpcore.ConnectionPool.__dict__["handle_request"]),
            "django": wrapped(
                django.core.handlers.base.BaseHandler.__dict__["load_middleware"]
            ),
            "django_asgi": hasattr(
                django.core.handlers.asgi.ASGIHandler.__call__, "_posthog_original"
            ),
            "celery": any("_before_publish" in r for r in receivers),
        }))
        """
    )
    assert result == {
        "before": [],
        "fastapi": "user-2",
        "fastapi_middleware": True,
        "requests": True,
        "aiohttp": True,
        "httpcore": True,
        "django": True,
        "django_asgi": True,
        "celery": True,
    }


def test_uninstrument_before_the_import_leaves_the_library_alone() -> None:
    result = _run(
        """
        PosthogInstrumentor().uninstrument()
        import aiohttp
        import django.core.handlers.base

        print(json.dumps({
            "before": before,
            "aiohttp": hasattr(aiohttp.ClientRequest.__dict__["send"], "__wrapped__"),
            "django": hasattr(
                django.core.handlers.base.BaseHandler.__dict__["load_middleware"], "__wrapped__"
            ),
        }))
        """
    )
    assert result == {"before": [], "aiohttp": False, "django": False}
