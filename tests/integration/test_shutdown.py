"""SIGTERM to the frontend's gunicorn master, as the kubelet sends it: drain, game-over once, exit 0."""

import signal
import threading
import time

import pytest
import requests

from .conftest import POD_NAME

pytestmark = pytest.mark.integration

GRACEFUL_TIMEOUT = 15  # frontend_site/gunicorn.conf.py
GAME_OVER_TIMEOUT = 2.0  # frontend settings default
# These tests prove what shutdown waits for, not how fast it is (bench/ measures that): an idle frontend
# or one whose backend refuses connections must not sit out graceful_timeout or GAME_OVER_TIMEOUT. The
# slack covers a loaded 2-core CI machine.
PROMPT = 4.0


def game_over_lines(backend):
    output = backend.output()
    return output.count('"POST /game-over HTTP/1.1"'), output.count("Received game-over signal from")


def test_sigterm__inflight_request_completes_then_game_over_once(backend, frontend_for):
    """A request in flight at SIGTERM completes; the backend then logs exactly one game-over."""
    frontend = frontend_for(backend.url)
    assert game_over_lines(backend) == (0, 0)
    # Freeze the backend so /health is held in flight inside the frontend while SIGTERM arrives.
    backend.signal_all(signal.SIGSTOP)
    result = {}
    in_flight = threading.Thread(
        target=lambda: result.update(response=requests.get(frontend.url + "/health", timeout=10))
    )
    in_flight.start()
    time.sleep(0.15)
    frontend.process.send_signal(signal.SIGTERM)
    time.sleep(0.15)
    backend.signal_all(signal.SIGCONT)
    in_flight.join()
    code = frontend.process.wait(timeout=GRACEFUL_TIMEOUT + GAME_OVER_TIMEOUT + 5)

    assert result["response"].status_code == 200, result["response"].text
    assert code == 0
    assert game_over_lines(backend) == (1, 1)
    assert f"Received game-over signal from {POD_NAME}" in backend.output()


def test_sigterm__idle_frontend_exits_fast(backend, frontend_for):
    """An idle frontend exits 0 without sitting out graceful_timeout, game-over delivered."""
    frontend = frontend_for(backend.url)
    code, seconds = frontend.terminate()
    assert code == 0
    assert seconds < PROMPT, f"exit took {seconds:.2f} s"
    assert game_over_lines(backend) == (1, 1)


def test_sigterm__backend_stopped_still_exits(backend, frontend_for):
    """With the backend gone, shutdown is not held up by GAME_OVER_TIMEOUT: exit 0, the failure logged."""
    frontend = frontend_for(backend.url, GAME_OVER_TIMEOUT=10)
    backend.terminate()
    code, seconds = frontend.terminate()
    assert code == 0
    assert seconds < PROMPT, f"exit took {seconds:.2f} s"
    assert "game-over not delivered" in frontend.output()


def test_sigterm__backend_hung_exits_within_game_over_timeout(backend, frontend_for):
    """With a frozen backend, the game-over POST gives up after GAME_OVER_TIMEOUT and the pod still exits."""
    frontend = frontend_for(backend.url, GAME_OVER_TIMEOUT=2)
    backend.signal_all(signal.SIGSTOP)
    code, seconds = frontend.terminate()
    assert code == 0
    assert 2.0 <= seconds < 2.0 + PROMPT, f"exit took {seconds:.2f} s"
    assert "game-over not delivered" in frontend.output()
