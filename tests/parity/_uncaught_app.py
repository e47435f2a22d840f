"""Ends with an uncaught exception, reported by posthog-python's or posthog-otel's excepthooks.

python _uncaught_app.py posthog-python|posthog-otel main|thread HOST
"""

from __future__ import annotations

import sys
import threading


class CheckoutFailed(Exception):
    pass


def charge() -> None:
    raise CheckoutFailed("card declined")


def main() -> None:
    library, where, host = sys.argv[1:4]
    if library == "posthog-python":
        from posthog import Posthog as Client
    else:
        from posthog_otel import Client
    client = Client("phc_parity", host=host, sync_mode=True, enable_exception_autocapture=True)
    if where == "thread":
        worker = threading.Thread(target=charge, name="worker")
        worker.start()
        worker.join()
        client.shutdown()
    else:
        charge()


if __name__ == "__main__":
    main()
