"""A small Flask app run under ``opentelemetry-instrument`` by the end-to-end tests."""

from __future__ import annotations

import os

from flask import Flask

import posthog_otel as posthog

app = Flask(__name__)


@app.route("/checkout")
def checkout() -> str:
    posthog.tag("cart", "c-1")
    charge(500)
    return "ok"


@app.route("/health")
def health() -> str:
    return "ok"


def charge(amount: int) -> None:
    if amount > 100:
        raise RuntimeError(f"payment of {amount} failed")


if __name__ == "__main__":
    print("READY", flush=True)
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
