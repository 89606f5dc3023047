"""OCI runtime-spec v1.3 conformance suite for runc-compatible runtimes.

Modules:
  catalog   the requirements (one entry per MUST/SHOULD/REQUIRED, plus the
            field semantics a Linux runtime has to honour)
  harness   runtimes, bundles, containers, cleanup and leak checks
  tests_*   the tests; each names the requirement ids it judges
  report    the Markdown report and the baseline file
  cli       `conformance/run`
"""
