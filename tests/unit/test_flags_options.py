"""Feature-flag options of the client, and what happens without posthog-python."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from posthog_otel.config import ClientSettings
from posthog_otel.flags import FLAGS_INSTALL, delegate_options

ROOT = Path(__file__).resolve().parents[2]


def test_flag_options_are_accepted_and_checked() -> None:
    settings = ClientSettings.build(
        "phc_x",
        personal_api_key=" phx_1 ",
        poll_interval=10,
        feature_flags_request_timeout_seconds=1,
        feature_flags_request_max_retries=0,
        enable_local_evaluation=False,
        flag_fallback_cache_url="memory://local/?ttl=60",
    )
    assert settings.personal_api_key == "phx_1"
    assert settings.poll_interval == 10.0
    assert settings.enable_local_evaluation is False
    assert "phx_1" not in repr(settings)
    for bad in (
        {"poll_interval": "often"},
        {"poll_interval": 0},
        {"feature_flags_request_timeout_seconds": -1},
        {"feature_flags_request_max_retries": 1.5},
        {"enable_local_evaluation": "yes"},
        {"personal_api_key": 12},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ClientSettings.build("phc_x", **bad)


def test_the_delegate_gets_our_settings_and_never_sends() -> None:
    settings = ClientSettings.build(
        "phc_x", host="http://127.0.0.1:9", personal_api_key="phx_1", poll_interval=5
    )
    accepted = {
        name: None
        for name in (
            "host",
            "send",
            "sync_mode",
            "enable_exception_autocapture",
            "poll_interval",
            "secret_key",
            "personal_api_key",
            "disable_geoip",
        )
    }
    options = delegate_options(settings, accepted)
    assert options == {
        "host": "http://127.0.0.1:9",
        "send": False,
        "sync_mode": True,
        "enable_exception_autocapture": False,
        "poll_interval": 5.0,
        "secret_key": "phx_1",
        "disable_geoip": True,
    }
    # an older posthog-python without secret_key gets the personal key under its old name
    del accepted["secret_key"]
    assert delegate_options(settings, accepted)["personal_api_key"] == "phx_1"


_WITHOUT_POSTHOG = textwrap.dedent(
    """
    import importlib.abc, logging, sys

    class HidePosthog(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "posthog" or name.startswith("posthog."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, HidePosthog())
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    import posthog_otel

    client = posthog_otel.Client(None)
    try:
        client.get_feature_flag("beta", "u1")
    except ImportError as exc:
        print("raised", type(exc).__name__, exc)
    print("capture", client.capture("ev", distinct_id="u1", send_feature_flags=True) is not None)
    try:
        posthog_otel.feature_enabled("beta", "u1")
    except posthog_otel.FlagsUnavailableError as exc:
        print("module raised", exc)
    """
)


def test_without_posthog_python_flag_calls_name_the_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_POSTHOG],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    out = result.stdout
    assert (
        f"raised FlagsUnavailableError posthog-otel evaluates feature flags with posthog-python, which is not installed: {FLAGS_INSTALL}"
        in out
    )
    assert "capture True" in out
    assert "sends this event without feature flags" in out and FLAGS_INSTALL in out
    assert "module raised" in out and out.count(FLAGS_INSTALL) >= 3
