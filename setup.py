"""Build glue that pyproject.toml can't express: the cffi extension and the schemas."""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    """Ship oci-schemas/ inside the package, where runtime.schema looks first."""

    def run(self):
        super().run()
        if not self.editable_mode:
            target = os.path.join(self.build_lib, "runtime", "oci-schemas")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree("oci-schemas", target)


setup(
    cffi_modules=["runtime/linux/_build.py:ffibuilder",
                  "runtime/linux/_seccomp_build.py:ffibuilder"],
    cmdclass={"build_py": BuildPy},
)
