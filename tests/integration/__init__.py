"""Tests with real servers, subprocesses, frameworks and a browser."""
