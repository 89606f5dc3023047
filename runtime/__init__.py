"""runtime: an OCI runtime-spec compliant, runc-compatible container runtime."""

__version__ = "0.1.0"
# The runtime-spec version this runtime implements and writes into state.
OCI_VERSION = "1.3.0"
