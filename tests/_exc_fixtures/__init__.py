"""Helper modules for tests/test_exceptions.py: real code that raises at known lines."""
