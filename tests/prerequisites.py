"""Tools the tests need: skipped with the reason on a developer machine, a failure under CI=true.

One place decides this, so no test can quietly skip in CI because a tool is missing there.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest


def in_ci():
    """True when running in CI (CI=true), where a missing tool or file is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


def skip_or_fail(reason):
    """Skip the test outside CI; fail it under CI=true."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: missing prerequisites fail the run)", pytrace=False)
    pytest.skip(f"{reason} (skipped outside CI; CI=true makes this a failure)")


def find_tool(name):
    """The path of a command-line tool: on PATH, or installed beside this Python (the venv); else None."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None
