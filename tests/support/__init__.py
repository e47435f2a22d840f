"""Helpers shared by the tests: loopback servers, subprocess control, test apps."""
