"""A failing create must surface the runtime's own one-line error text in the client's
error message.  The runtime is run behind a wrapper that keeps its --log file and
stderr after a failure (the clients delete them), so the expected text is whatever
the runtime under test wrote, not runc's wording.

- containerd's shim and podman's conmon (for runtimes in runtime_supports_json) read
  the last ``level=error`` msg of the JSON --log file;
- for a runtime not in runtime_supports_json conmon gets no --log and reports the
  runtime's stderr.
"""

import pytest

from e2elib import IMAGE, last_error_msg

pytestmark = pytest.mark.e2e

# Each makes the runtime's `create` fail (podman itself checks a workdir, so the
# invalid-config case differs per client).
PODMAN_CASES = {
    "missing-binary": [IMAGE, "/nonexistent/e2e-binary"],
    "unknown-sysctl": ["--sysctl", "net.e2e.nonexistent=1", IMAGE, "true"],
}
CTR_CASES = {  # flags before IMAGE ID, command after
    "missing-binary": ([], ["/nonexistent/e2e-binary"]),
    "cwd-not-a-directory": (["--cwd", "/etc/passwd"], ["true"]),
}


def _the_failed_create(e2e):
    calls = [c for c in e2e.error_calls() if " create " in f" {c['argv']} "]
    assert len(calls) == 1, e2e.error_calls()
    return calls[0]


def _last_stderr_line(stderr):
    lines = [line for line in (stderr or "").splitlines() if line.strip()]
    assert lines, "the runtime printed nothing on stderr"
    return lines[-1]


@pytest.mark.parametrize("case", sorted(PODMAN_CASES))
def test_podman_shows_runtime_error_from_log(pm, e2e, case):
    e2e.clear_error_calls()
    r = pm.run("--rm", *PODMAN_CASES[case], runtime="runtime-errlog")
    assert r.returncode in (125, 126, 127), r
    call = _the_failed_create(e2e)
    assert "--log-format=json" in call["argv"].split()
    assert call["log"], "the runtime wrote no --log file"
    msg = last_error_msg(call["log"])
    assert msg, f"no level=error line in the runtime's log: {call['log']!r}"
    assert "\n" not in msg
    assert msg in r.stderr, (msg, r.stderr)
    assert r.stderr.startswith("Error: runtime-errlog: ")


@pytest.mark.parametrize("case", sorted(PODMAN_CASES))
def test_podman_shows_runtime_error_from_stderr(pm, e2e, case):
    """A runtime name missing from runtime_supports_json: conmon gets no --log and
    podman shows the last line the runtime printed on stderr, verbatim (for runc a
    logrus line: time=... level=error msg="...")."""
    e2e.clear_error_calls()
    r = pm.run("--rm", *PODMAN_CASES[case], runtime="runtime-errnojson")
    assert r.returncode in (125, 126, 127), r
    call = _the_failed_create(e2e)
    assert "--log-format=json" not in call["argv"].split()
    line = _last_stderr_line(call["stderr"])
    assert f"Error: runtime-errnojson: {line}" in r.stderr, (call["stderr"], r.stderr)


@pytest.mark.parametrize("case", sorted(CTR_CASES))
def test_ctr_shows_runtime_error(ct, e2e, case):
    e2e.clear_error_calls()
    cid = ct.name()
    flags, cmd = CTR_CASES[case]
    r = ct.run("--rm", *flags, IMAGE, cid, *cmd, binary=e2e.err_wrapper)
    assert r.returncode != 0
    call = _the_failed_create(e2e)
    msg = last_error_msg(call["log"] or "")
    assert msg, f"no level=error line in the runtime's log: {call['log']!r}"
    assert "\n" not in msg
    assert f"OCI runtime create failed: {msg}" in r.stderr, (msg, r.stderr)
    assert cid not in ct.tasks()
    # the shim cleans up after a failed create with `delete --force`
    ct("containers", "rm", cid)
