"""Benchmark harness: times whole runtime processes (runtime vs runc vs crun)."""
