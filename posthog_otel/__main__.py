"""``python -m posthog_otel`` runs the ``posthog-otel`` command (see :mod:`posthog_otel.cli`)."""

import sys

from .cli import main

sys.exit(main())
