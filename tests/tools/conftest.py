"""Shared fixtures for the tools/verify.py tests: recorded kubectl JSON and a fake kubectl.

The JSON under fixtures/ is what `kubectl get ... -o json` prints for a correct task-03 deployment,
built by hand from `kubectl kustomize kustomize/overlays/k3s` plus the fields the API server adds
(defaults, status, pod names). Tests that need a broken variant copy a fixture and change one field.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAKE_KUBECTL = Path(__file__).resolve().parent / "fake_kubectl.py"


@pytest.fixture
def load() -> Callable[[str], dict]:
    """Return a loader giving a fresh parsed copy of a JSON fixture (safe to mutate)."""

    def load_fixture(name: str) -> dict:
        return json.loads((FIXTURES / name).read_text())

    return load_fixture


@pytest.fixture
def backend_log() -> str:
    """The recorded backend log: gunicorn access lines with two earlier POST /game-over calls."""
    return (FIXTURES / "backend.log").read_text()


@pytest.fixture
def cluster_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake cluster holding the correct deployment, wired to fake_kubectl.py via the env."""
    state = tmp_path / "cluster"
    shutil.copytree(FIXTURES, state)
    monkeypatch.setenv("FAKE_KUBECTL_DIR", str(state))
    return state


@pytest.fixture
def fake_kubectl() -> str:
    """The --kubectl value that runs the fake (split by verify.py like a shell would)."""
    # -S skips site-packages: the fake is stdlib-only and runs ~20 times per verify run.
    return shlex.join([sys.executable, "-S", str(FAKE_KUBECTL)])
