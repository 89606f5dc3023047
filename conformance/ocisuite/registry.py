"""Test registration: @test("req.id", ...) marks a function as the test of those ids."""

from .catalog import BY_ID

TESTS = []


class Test:
    def __init__(self, name, reqs, fn, doc):
        self.name, self.reqs, self.fn, self.doc = name, tuple(reqs), fn, doc


def test(*reqs):
    for r in reqs:
        if r not in BY_ID:
            raise KeyError(f"unknown requirement id {r}")

    def deco(fn):
        TESTS.append(Test(fn.__name__.removeprefix("t_").replace("_", "-"), reqs, fn,
                          (fn.__doc__ or "").strip()))
        return fn
    return deco


MODULES = ("tests_runtime", "tests_hooks", "tests_process", "tests_mounts", "tests_linux",
           "tests_cgroups", "tests_seccomp", "tests_features")


def load_all():
    import importlib
    for m in MODULES:
        importlib.import_module(f"{__package__}.{m}")
    return TESTS
