"""Side-by-side benchmarks of posthog-otel against the peers named in the issues.

Run all of them with ``python -m benchmarks`` (or ``make bench``); see benchmarks/README.md.
"""
