"""Fast, in-process tests, grouped like the package."""
