"""The development loop as the README documents it: `python manage.py runserver` in each project folder.

Each test runs in a network namespace of its own (`unshare --net`, root), so the README's fixed ports (5000,
8080) are free whatever else runs on this machine, and nothing is pointed anywhere by a flag or variable.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.prerequisites import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]

# Runs inside the namespace: both servers exactly as documented, then the frontend's answers.
SCRIPT = r"""
set -eu
trap 'kill $(jobs -p) 2>/dev/null; cat "$LOGS"/*.log >&2' EXIT
ip link set lo up
(cd backend_site && exec "$PY" manage.py runserver --noreload) >"$LOGS/backend.log" 2>&1 &
(cd frontend_site && exec "$PY" manage.py runserver --noreload) >"$LOGS/frontend.log" 2>&1 &
for _ in $(seq 100); do
    curl -fsS http://127.0.0.1:8080/startup >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sS http://127.0.0.1:5000/get-config; echo
curl -sS http://127.0.0.1:8080/who-am-i; echo
"""


def test_runserver__frontend_finds_the_backend_on_localhost(tmp_path):
    """runserver in backend_site/ and frontend_site/, no flags: 5000 and 8080, and who-am-i gets the code."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("curl") is None:
        skip_or_fail("the dev-loop test needs root, unshare and curl (a network namespace of its own)")
    env = {key: value for key, value in os.environ.items() if key not in {"BACKEND_URL", "DJANGO_DEBUG"}}
    env |= {"PY": sys.executable, "LOGS": str(tmp_path)}
    command = ["unshare", "--net", "bash", "-c", SCRIPT]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Starting development server at http://127.0.0.1:8080/" in result.stderr
    config, who = (json.loads(line) for line in result.stdout.splitlines()[:2])
    assert config["code"].startswith("BACKEND-")
    assert who["code"] == config["code"]
