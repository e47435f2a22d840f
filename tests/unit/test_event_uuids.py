"""New event uuids: version-4 uuids drawn from a buffer of random bytes, never shared with a
forked child."""

from __future__ import annotations

import os
import uuid

from hypothesis import given
from hypothesis import strategies as st

from posthog_otel import _events


@given(st.binary(min_size=16, max_size=16))
def test_the_text_is_what_uuid_writes_for_the_same_bytes(raw: bytes) -> None:
    _events._RANDOM_IDS.append(raw)
    assert _events.new_uuid() == str(uuid.UUID(bytes=raw, version=4))


def test_new_uuids_are_version_4_and_unique() -> None:
    drawn = [_events.new_uuid() for _ in range(3000)]  # several refills of the buffer
    assert len(set(drawn)) == len(drawn)
    parsed = uuid.UUID(drawn[-1])
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_draws_other_uuids_than_its_parent() -> None:
    _events.new_uuid()  # the parent now holds unused random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next uuids and leave at once
        os.close(read)
        os.write(write, ",".join(_events.new_uuid() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {_events.new_uuid() for _ in range(50)}
    assert len(child) == 50
    assert not child & parent
