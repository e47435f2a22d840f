"""kombu's filesystem transport with atomic message files, for the Celery tests.

The stock transport creates a message file and then writes it, so a worker polling the folder
can pick up a file that is still empty and fail on ``JSONDecodeError`` (seen under load). Here
a message is written under a name the consumer ignores and renamed into place when complete.

    Celery("app", broker="filesystem://", broker_transport="tests.support.apps.atomic_fs:Transport")
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".partial"  # not "<queue>.msg": never picked up while written
        with open(partial, "wb") as file:
            file.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)


class Transport(filesystem.Transport):
    Channel = Channel
