"""The differential suite needs the oracle: posthog-python from the ``bench``/``flags`` extra."""

import pytest

pytest.importorskip("posthog", reason="the parity suite compares against posthog-python")
