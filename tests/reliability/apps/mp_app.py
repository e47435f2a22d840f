"""Captures in ``multiprocessing`` children, with no explicit flush anywhere.

    python -m tests.reliability.apps.mp_app fork|spawn|forkserver

Needs ``POSTHOG_API_KEY`` and ``POSTHOG_HOST``. The parent captures before and after starting
children; 3 ``Process`` children and a ``Pool`` of 3 workers capture too, each returning the
uuids it got. Prints one JSON line: {"parent": [...], "children": [...], "pids": [...]}.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from typing import Any

from posthog_otel import Client

PER_CHILD = 25

# Built at import: in the parent, and again in each spawned child (which imports this module).
client = Client(flush_interval=0.05, shutdown_timeout=5)


def process_child(n: int, results: Any) -> None:
    uuids = [
        client.capture(
            "in_process_child", distinct_id=f"child-{n}", properties={"pid": os.getpid()}
        )
        for _ in range(PER_CHILD)
    ]
    results.put({"pid": os.getpid(), "uuids": uuids})  # and return: no flush, no shutdown


def pool_task(n: int) -> dict[str, Any]:
    uuid = client.capture("in_pool_task", distinct_id=f"task-{n}", properties={"pid": os.getpid()})
    return {"pid": os.getpid(), "uuids": [uuid]}


def main() -> None:
    method = sys.argv[1]
    ctx = multiprocessing.get_context(method)
    parent = [client.capture("parent_before", distinct_id="parent")]
    results = ctx.Queue()
    processes = [ctx.Process(target=process_child, args=(n, results)) for n in range(3)]
    for process in processes:
        process.start()
    children = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0, process.exitcode
    with ctx.Pool(3) as pool:
        children += pool.map(pool_task, range(30))
        pool.close()
        pool.join()
    parent.append(client.capture("parent_after", distinct_id="parent"))
    print(
        json.dumps(
            {
                "parent": parent,
                "children": [u for child in children for u in child["uuids"]],
                "pids": sorted({child["pid"] for child in children}),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
