"""The shared module both services carry: the two copies are one file, and its env parsing is strict."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COPIES = [ROOT / "backend_site/backend_site/shared.py", ROOT / "frontend_site/frontend_site/shared.py"]


def load_shared():
    spec = importlib.util.spec_from_file_location("shared_under_test", COPIES[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shared_copies__identical():
    """Each image carries its own copy (separate build contexts); they must never drift apart."""
    assert COPIES[0].read_bytes() == COPIES[1].read_bytes()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), (" on ", True), ("0", False), ("no", False), ("", False)],
)
def test_env_bool__values(monkeypatch, value, expected):
    """1/true/yes/on in any case are true; anything else is false; empty means the default."""
    monkeypatch.setenv("X_FLAG", value)
    assert load_shared().env_bool("X_FLAG") is expected


def test_env_float__default_when_unset(monkeypatch):
    """An unset number takes its default."""
    monkeypatch.delenv("X_SECONDS", raising=False)
    assert load_shared().env_float("X_SECONDS", 0.5) == 0.5


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_env_float__invalid_names_the_variable(monkeypatch, value):
    """A bad number fails at start-up with the variable's name, not later with a confusing error."""
    monkeypatch.setenv("X_SECONDS", value)
    with pytest.raises(ValueError, match="X_SECONDS must be a positive number"):
        load_shared().env_float("X_SECONDS", 0.5)
