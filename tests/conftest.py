"""pytest's view of tests/support.py: its fixtures and command-line option."""

from support import (bundle, console_socket, leak_check, make_bundle, public_dir,  # noqa: F401
                     pytest_addoption, runtime)
