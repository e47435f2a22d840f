"""Helper modules for tests/unit/errors/test_exceptions.py: real code that raises at known lines."""
