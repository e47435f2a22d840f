"""The demo's two services: a frontend-facing shop API and a downstream billing service.

Each runs in its own process on 127.0.0.1, instrumented by ``PosthogInstrumentor`` only::

    python -m posthog_otel.demo.services billing --port 8021
    python -m posthog_otel.demo.services frontend --port 8020 --billing-url http://127.0.0.1:8021

They use the standard library's WSGI server. A small wrapper starts an OpenTelemetry SERVER
span per request from the incoming headers (what contrib's WSGI instrumentation does), and
:class:`~posthog_otel.instrumentors.wsgi.PosthogWSGIMiddleware` gives each request its PostHog context.
The spans also go to the sink's OTLP traces endpoint (``PosthogInstrumentor(traces=True)``,
``$POSTHOG_HOST/i/v1/traces``) and, with the ``otlp`` extra, the services' ``logging`` records
to its logs endpoint (``logs=True``, ``$POSTHOG_HOST/i/v1/logs``), so its trace page shows a
request's spans, log lines and events together.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from opentelemetry import propagate, trace

import posthog_otel as posthog
from posthog_otel.instrumentors.wsgi import PosthogWSGIMiddleware

from ..instrumentor import PosthogInstrumentor

Start = Callable[..., Any]

def exports_logs() -> bool:
    """Logs export needs OpenTelemetry's OTLP classes (the ``otlp`` extra)."""
    try:
        return importlib.util.find_spec("opentelemetry.proto.logs.v1.logs_pb2") is not None
    except ModuleNotFoundError:
        return False


shop_log = logging.getLogger("demo.shop")
billing_log = logging.getLogger("demo.billing")


class CardDeclined(Exception):
    """Raised by billing for the demo's declined card."""


def _json(start_response: Start, status: str, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length) if length else b"{}"
    parsed: dict[str, Any] = json.loads(data or b"{}")
    return parsed


def billing_app(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/healthz":
        return _json(start_response, "200 OK", {"ok": True})
    order = _read_json(environ)
    posthog.tag("order_id", order.get("order_id"))
    if order.get("card") == "declined":
        billing_log.warning("card declined for order %s", order.get("order_id"))
        raise CardDeclined(f"card declined for order {order.get('order_id')}")
    billing_log.info("authorized %.2f for order %s", order.get("amount"), order.get("order_id"))
    posthog.capture("payment_authorized", properties={"amount": order.get("amount")})
    return _json(start_response, "200 OK", {"authorized": True})


def recommend(products: list[str]) -> str:
    """The shop's AI step: a model call recorded as a GenAI span, as an OpenAI or Anthropic
    instrumentation records one (the demo answers without a model). It becomes an
    ``$ai_generation`` of the request's user."""
    question = f"Which of {', '.join(products)} should I feature?"
    answer = products[0]
    attributes: dict[str, str | int] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "demo",
        "gen_ai.request.model": "demo-recommender",
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": question}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]
        ),
        "gen_ai.usage.input_tokens": len(question.split()),
        "gen_ai.usage.output_tokens": 1,
    }
    tracer = trace.get_tracer("posthog_otel.demo")
    with tracer.start_as_current_span("chat demo-recommender", attributes=attributes):
        return answer


def frontend_app(billing_url: str) -> Callable[[dict[str, Any], Start], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/healthz":
            return _json(start_response, "200 OK", {"ok": True})
        if path == "/products":
            posthog.tag("catalog", "spring-sale")
            shop_log.info("listing 3 products")
            posthog.capture("products_viewed", properties={"count": 3})
            pick = recommend(["hedgehog", "owl", "fox"])
            return _json(
                start_response, "200 OK", {"products": ["hedgehog", "owl", "fox"], "pick": pick}
            )
        if path == "/cart":
            posthog.tag("cart_id", "cart-42")
            shop_log.info("added hedgehog-plush to cart cart-42")
            posthog.capture("added_to_cart", properties={"sku": "hedgehog-plush", "price": 12.5})
            return _json(start_response, "200 OK", {"items": 1})
        if path == "/checkout":
            return checkout(environ, start_response)
        return _json(start_response, "404 Not Found", {"error": "not found"})

    def checkout(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        order = _read_json(environ)
        posthog.tag("order_id", order["order_id"])
        posthog.tag("order_steps", ["cart", "checkout"])
        shop_log.info("charging order %s", order["order_id"])
        # The PostHog context travels by itself (our requests instrumentor); `inject` adds the
        # trace context too, as contrib's requests instrumentation would when installed.
        url = f"{billing_url}/charge"
        answer = requests.post(url, json=order, headers=posthog.inject({}, url=url), timeout=10)
        if answer.status_code != 200:
            shop_log.warning("billing refused order %s", order["order_id"])
            posthog.capture("checkout_failed", properties={"billing_status": answer.status_code})
            return _json(start_response, "402 Payment Required", {"paid": False})

        def queue_receipt() -> None:  # a background thread: the request's context follows
            posthog.capture("receipt_queued", properties={"channel": "email"})

        worker = threading.Thread(target=queue_receipt)
        worker.start()
        worker.join()
        posthog.capture("order_completed", properties={"amount": order["amount"]})
        return _json(start_response, "200 OK", {"paid": True})

    return app


def with_server_span(app: Callable[[dict[str, Any], Start], Iterable[bytes]]) -> Any:
    """Start a SERVER span per request from the incoming headers, as contrib's WSGI does."""
    tracer = trace.get_tracer("posthog_otel.demo")

    def wrapped(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        attributes = {"http.request.method": method, "url.path": path, "http.route": path}
        with tracer.start_as_current_span(
            f"{method} {path}",
            context=propagate.extract(headers),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            def record_status(status: str, *args: Any) -> Any:
                span.set_attribute("http.response.status_code", int(status.split()[0]))
                return start_response(status, *args)

            return list(app(environ, record_status))

    return wrapped


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadedServer(WSGIServer):
    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(
            target=self._serve_one, args=(request, client_address), daemon=True
        ).start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="posthog-otel demo service")
    parser.add_argument("service", choices=["frontend", "billing"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--billing-url", default="")
    args = parser.parse_args(argv)

    # These services are the application here: their directory is the project.
    here = os.path.dirname(os.path.abspath(__file__))
    logging.getLogger("demo").setLevel(logging.INFO)
    PosthogInstrumentor().instrument(
        flush_interval=0.2, project_root=here, traces=True, logs=exports_logs()
    )
    app = billing_app if args.service == "billing" else frontend_app(args.billing_url)
    server = make_server(
        "127.0.0.1",
        args.port,
        with_server_span(PosthogWSGIMiddleware(app)),
        _ThreadedServer,
        _Quiet,
    )

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{args.service} listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]
    posthog.shutdown(5)


if __name__ == "__main__":
    main()
