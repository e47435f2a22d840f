"""A small Django project for the Django tests (in-process and as a real server process)."""
