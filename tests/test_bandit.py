"""bandit finds nothing in the Python code that ships or operates the services (backend_site, podkit,
frontend_site, tools; not the tests), and every `# nosec` there names the one check it silences.

bandit reads its settings from pyproject.toml ([tool.bandit], if present), like ruff and pytest.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.prerequisites import find_tool, skip_or_fail

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("backend_site", "frontend_site", "podkit", "tools")
PYPROJECT = str(REPO / "pyproject.toml")
INSTALL_HINT = "pip install bandit==1.9.4 (pinned in requirements-dev.txt)"
# `# nosec` alone silences every check on the line; require the id(s), e.g. `# nosec B108`.
NOSEC = re.compile(r"#\s*nosec\b(?P<rest>.*)")
NOSEC_WITH_IDS = re.compile(r"^:?\s*B\d{3}(\s*,\s*B\d{3})*\b")


def bandit_path() -> str:
    """bandit on PATH or beside this Python; skipped outside CI when missing, a failure under CI=true."""
    found = find_tool("bandit")
    if not found:
        skip_or_fail(f"bandit not found on PATH or in the venv: {INSTALL_HINT}")
    return found


def run_bandit(bandit: str, *targets: str, cwd: Path = REPO) -> dict:
    """bandit's JSON report on the targets (recursively), with the repository's pyproject config."""
    result = subprocess.run(
        [bandit, "--recursive", "--format", "json", "--quiet", "--configfile", PYPROJECT, *targets],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # 0: clean, 1: issues found; anything else is bandit itself failing.
    assert result.returncode in (0, 1), f"bandit exited {result.returncode}:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


def describe(issues: list[dict]) -> str:
    """One line per issue: id, place, text."""
    return "\n".join(
        f"{issue['test_id']} {issue['filename']}:{issue['line_number']} {issue['issue_text']}"
        for issue in issues
    )


@pytest.fixture(scope="module")
def bandit() -> str:
    """Path of the bandit executable."""
    return bandit_path()


def test_bandit__no_issues_in_service_and_tool_code(bandit):
    """bandit reports no issue (of any severity or confidence) and no error in the three folders."""
    report = run_bandit(bandit, *SCANNED)
    assert report["errors"] == [], report["errors"]
    assert report["results"] == [], "\n" + describe(report["results"])
    scanned = {Path(name).parts[0] for name in report["metrics"] if name != "_totals"}
    assert scanned == set(SCANNED), f"bandit scanned {sorted(scanned)}"


def test_bandit__every_nosec_names_its_check():
    """A `# nosec` in the scanned code names the check(s) it silences (`# nosec B108`), never all."""
    bare = []
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                match = NOSEC.search(line)
                if match and not NOSEC_WITH_IDS.match(match["rest"].strip()):
                    bare.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not bare, "\n".join(bare)


def test_bandit__flags_shell_injection(bandit, tmp_path):
    """bandit reports subprocess with shell=True on a variable (B602), so the check above can fail."""
    (tmp_path / "bad.py").write_text(
        "import subprocess\n\n\ndef run(command):\n    return subprocess.call(command, shell=True)\n"
    )
    report = run_bandit(bandit, "bad.py", cwd=tmp_path)
    assert "B602" in {issue["test_id"] for issue in report["results"]}, describe(report["results"])
