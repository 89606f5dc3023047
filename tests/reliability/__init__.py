"""Reliability tests (issue 7): a package, so that its conftest.py is imported as
``reliability.conftest`` and does not take the name ``conftest`` from tests/conftest.py."""
