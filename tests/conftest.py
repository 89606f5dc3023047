"""pytest's view of tests/support.py: its fixtures and command-line option."""

from support import (bundle, console_socket, leak_check, make_bundle, probe,  # noqa: F401
                     public_dir, pytest_addoption, runtime)
