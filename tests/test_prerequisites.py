"""tests/prerequisites.py decides skip-or-fail: a test that lacks a tool skips with the reason on a
developer machine, and fails under CI=true. Run here on a real test in a pytest of its own."""

import os
import subprocess
import sys

from testbed.podspec import REPO

NEEDS_A_MISSING_TOOL = """\
from tests.prerequisites import find_tool, skip_or_fail


def test_needs_a_tool():
    if find_tool("no-such-tool-anywhere") is None:
        skip_or_fail("no-such-tool-anywhere is not installed (apt-get install no-such-tool)")
"""


def run_pytest(tmp_path, ci):
    """pytest -rsf on a test needing a tool nobody has, with CI=true or without CI; (exit code, output)."""
    test = tmp_path / "test_needs_a_tool.py"
    test.write_text(NEEDS_A_MISSING_TOOL)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PYTHONPATH"] = str(REPO)
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider", "-rsf", str(test)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout


def test_skip_or_fail__skips_with_the_reason_outside_ci(tmp_path):
    """Without CI the test is skipped, not failed, and the summary says what is missing and how to get it."""
    code, output = run_pytest(tmp_path, ci=None)
    assert code == 0, output
    assert "1 skipped" in output, output
    assert "no-such-tool-anywhere is not installed (apt-get install no-such-tool)" in output


def test_skip_or_fail__fails_under_ci(tmp_path):
    """Under CI=true (any case) the same test fails, naming what is missing."""
    for ci in ("true", "TRUE"):
        code, output = run_pytest(tmp_path, ci=ci)
        assert code == 1, output
        assert "1 failed" in output, output
        assert "no-such-tool-anywhere is not installed" in output
