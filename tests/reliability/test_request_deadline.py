"""The client's posts to PostHog end on time, whatever the server does.

Raw loopback servers misbehave after reading each request in full: one drips its answer a byte
at a time, one never answers, one closes the connection or sends a broken gzip body.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from posthog_otel import Client

Behaviour = Callable[[socket.socket], None]


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


@contextmanager
def raw_server(behaviour: Behaviour) -> Iterator[tuple[str, list[float]]]:
    """A server that reads each request, then does ``behaviour``; yields (url, request times)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    seen: list[float] = []
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                _read_request(conn)
                seen.append(time.monotonic())
                behaviour(conn)
            except OSError:
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        thread.join()
        listener.close()


def drip(conn: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
        conn.sendall(bytes([byte]))
        time.sleep(0.3)


def hang(conn: socket.socket) -> None:
    time.sleep(30)


def close_at_once(conn: socket.socket) -> None:
    conn.shutdown(socket.SHUT_RDWR)


def bad_gzip(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 8\r\n\r\nnot gzip")


def test_timeout_bounds_the_whole_request_not_each_read() -> None:
    with raw_server(drip) as (url, seen):
        client = Client("phc_deadline", host=url, timeout=2, max_retries=0, gzip=False)
        client.capture("one", distinct_id="u")
        started = time.monotonic()
        client.flush(30)
        took = time.monotonic() - started
        client.shutdown(1)
        assert len(seen) == 1
        assert took < 3.5, took  # the drip would take ~12 s
        assert client.stats()["dropped"] == {"unacknowledged": 1}


def test_a_post_in_flight_when_shutdown_starts_is_counted_within_its_budget() -> None:
    with raw_server(hang) as (url, seen):
        client = Client("phc_deadline", host=url, timeout=30, max_retries=3)
        client.capture("one", distinct_id="u")
        client.flush(0.0)  # wake the sender
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen, "the post never reached the server"
        started = time.monotonic()
        assert client.shutdown(1.0) is False
        took = time.monotonic() - started
        assert took < 1.5, took
        assert client.stats()["dropped"] == {"unacknowledged": 1}  # counted by then


@pytest.mark.parametrize("behaviour", [close_at_once, bad_gzip], ids=["closed", "bad_gzip"])
def test_a_sent_batch_with_a_broken_answer_is_unacknowledged_not_failed(
    behaviour: Behaviour,
) -> None:
    with raw_server(behaviour) as (url, seen):
        client = Client("phc_deadline", host=url, timeout=5, max_retries=2)
        client.capture("one", distinct_id="u")
        client.capture("two", distinct_id="u")
        client.flush(30)
        client.shutdown(1)
        assert len(seen) == 3  # the first attempt and two retries, each received in full
        assert client.stats()["dropped"] == {"unacknowledged": 2}
