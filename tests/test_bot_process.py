"""Real Freqtrade processes started through `freqtrade-ratekit`, checked over HTTP."""

import subprocess
import sys
import time

import pytest
import requests

from tests.helpers import API_PASSWORD, API_USER, find_free_port, write_config

pytestmark = pytest.mark.e2e
AUTH = (API_USER, API_PASSWORD)


def start_webserver(tmp_path, ratekit):
    port = find_free_port()
    config = write_config(tmp_path, ratekit, api_port=port)
    log = (tmp_path / "bot.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "freqtrade_ratekit.cli", "webserver", "-c", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "bot.log").read_text())
        try:
            if requests.get(f"{url}/api/v1/ping", timeout=1).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("bot did not answer /api/v1/ping in time")


def stop(proc):
    proc.terminate()
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_enabled_bot_serves_ratekit_status_behind_freqtrade_auth(tmp_path):
    proc, url = start_webserver(tmp_path, {"enabled": True})
    try:
        assert requests.get(f"{url}/api/v1/ping", timeout=5).json() == {"status": "pong"}
        assert requests.get(f"{url}/api/v1/ratekit/status", timeout=5).status_code == 401
        bad = requests.get(f"{url}/api/v1/ratekit/status", auth=(API_USER, "wrong"), timeout=5)
        assert bad.status_code == 401
        response = requests.get(f"{url}/api/v1/ratekit/status", auth=AUTH, timeout=5)
        assert response.status_code == 200
        body = response.json()
        assert body["enabled"] is True
        assert body["version"]
        assert body["freqtrade_version"]
        assert {"rate_cache", "fiat", "weights"} <= set(body)
        # Freqtrade's JWT login works for ratekit routes too
        token = requests.post(f"{url}/api/v1/token/login", auth=AUTH, timeout=5).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        jwt = requests.get(f"{url}/api/v1/ratekit/status", headers=headers, timeout=5)
        assert jwt.status_code == 200
    finally:
        stop(proc)


@pytest.mark.parametrize("section", [None, {"enabled": False}])
def test_disabled_bot_has_no_ratekit_routes(tmp_path, section):
    proc, url = start_webserver(tmp_path, section)
    try:
        assert requests.get(f"{url}/api/v1/ping", timeout=5).status_code == 200
        response = requests.get(f"{url}/api/v1/ratekit/status", auth=AUTH, timeout=5)
        assert response.status_code == 404
    finally:
        stop(proc)
    assert "Freqtrade runs unpatched" in (tmp_path / "bot.log").read_text()


def test_bad_section_stops_the_bot_before_it_starts(tmp_path):
    config = write_config(tmp_path, {"enabled": True, "rate_cache": {"maxsize": -1}})
    result = subprocess.run(
        [sys.executable, "-m", "freqtrade_ratekit.cli", "trade", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "ratekit.rate_cache.maxsize = -1: must be >= 1" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args", [["trade", "-c", "/nonexistent/config.json"], ["--version"], ["list-timeframes", "-h"]]
)
def test_freqtrade_exit_codes_pass_through(args):
    def run(module):
        return subprocess.run(
            [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=60
        )

    stock, ours = run("freqtrade"), run("freqtrade_ratekit.cli")
    assert ours.returncode == stock.returncode
    assert stock.returncode == (2 if args[0] == "trade" else 0)
