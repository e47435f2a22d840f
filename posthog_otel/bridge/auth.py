"""Who may send to the bridge, and which PostHog project their data goes to.

* ``--require-header 'Authorization=Bearer s3cret'`` (repeatable): every request must carry
  each header with exactly that value (compared in constant time), else 401.
* The PostHog project key comes from configuration (``POSTHOG_API_KEY`` / ``--api-key``).
  Only with ``--key-from-request`` is it taken from the request: ``X-PostHog-Api-Key``, else
  ``Authorization: Bearer <project key>`` (how PostHog's own OTLP endpoints are called), falling
  back to the configured key. One client (queue and sender) is kept per key, at most
  ``max_projects`` of them.

Usage::

    guard = HeaderGuard(settings.require_headers)
    if not guard.allows(headers):          # headers: lower-case name -> value
        ...answer 401...
    client = projects.client_for(headers)  # None: no key (401) / too many keys (403)
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from ..client import Client

__all__ = ["HeaderGuard", "NoProject", "Projects"]

_logger = logging.getLogger("posthog.otel.bridge")


class HeaderGuard:
    """Checks the headers every request must carry."""

    def __init__(self, required: Sequence[tuple[str, str]]) -> None:
        self._required = [(name.lower(), value.encode()) for name, value in required]

    def allows(self, headers: Mapping[str, str]) -> bool:
        ok = True
        for name, expected in self._required:
            given = headers.get(name, "").strip().encode("latin-1")  # the bytes as sent
            ok &= hmac.compare_digest(given, expected)  # check all: no early exit timing
        return ok


class NoProject(Exception):
    """No PostHog project for this request: ``status`` 401 (no key) or 403 (too many)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _bearer(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class Projects:
    """The clients events are sent through: one for the configured key, and with
    ``key_from_request`` one per key seen in requests."""

    def __init__(
        self,
        api_key: str | None,
        key_from_request: bool,
        max_projects: int,
        make_client: Callable[[str], Client],
    ) -> None:
        self._default = make_client(api_key) if api_key else None
        self._key_from_request = key_from_request
        self._max = max_projects
        self._make = make_client
        self._by_key: dict[str, Client] = {}
        self._lock = threading.Lock()
        self._warned_full = False

    @property
    def default(self) -> Client | None:
        return self._default

    def clients(self) -> list[Client]:
        with self._lock:
            found = list(self._by_key.values())
        return [self._default, *found] if self._default is not None else found

    def client_for(self, headers: Mapping[str, str]) -> Client:
        """The client for this request's project; :class:`NoProject` when there is none."""
        if self._key_from_request:
            key = headers.get("x-posthog-api-key", "").strip() or _bearer(
                headers.get("authorization", "")
            )
            if key:
                return self._client(key)
        if self._default is None:
            raise NoProject(
                401, "no PostHog project key: send Authorization: Bearer <project API key>"
            )
        return self._default

    def _client(self, key: str) -> Client:
        with self._lock:
            client = self._by_key.get(key)
            if client is not None:
                return client
            if len(self._by_key) >= self._max:
                if not self._warned_full:
                    self._warned_full = True
                    _logger.warning(
                        "posthog-otel bridge: more than %d PostHog project keys seen; refusing "
                        "new keys (raise --max-projects)",
                        self._max,
                    )
                raise NoProject(403, f"this bridge serves at most {self._max} PostHog projects")
            client = self._by_key[key] = self._make(key)
            return client

    def shutdown(self, timeout: float) -> bool:
        """Flush and stop every client, side by side, within ``timeout`` seconds in all."""
        clients = self.clients()
        if len(clients) == 1:
            return clients[0].shutdown(timeout)
        results: list[bool] = []
        threads = [
            threading.Thread(target=lambda c=client: results.append(c.shutdown(timeout)))
            for client in clients
        ]
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + 0.1)
        return len(results) == len(clients) and all(results)
