"""Loaded by the benchmark's Celery workers only (bench/extract.py puts this folder first on
their PYTHONPATH): hide the packages the development install adds that a production install of
Commonplace does not have, so the workers import what production workers import.

pandas is the one that matters: it comes only with the `dev` extra (the Delta Sharing
connector used by a test needs it), and pyarrow imports it on its first array conversion when it
is installed, which costs a worker about 0.7 s and 40-50 MB it would not spend in production.
"""

import sys
from importlib.abc import MetaPathFinder

DEV_ONLY = ("pandas",)


class _HideDevOnlyPackages(MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in DEV_ONLY:
            raise ModuleNotFoundError(f"No module named {name!r} (a dev-only package)", name=name)


sys.meta_path.insert(0, _HideDevOnlyPackages())
