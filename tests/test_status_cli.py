"""`freqtrade-ratekit status` against real HTTP servers on 127.0.0.1 (uvicorn, in-process).

One server mounts the ratekit router under `/api/v1` behind HTTP basic auth, like Freqtrade
mounts it; another is a "bot without ratekit" that only answers `/api/v1/ping`.
"""

from __future__ import annotations

import io
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
import requests
import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from freqtrade_ratekit import api, metrics, runtime
from freqtrade_ratekit.cli import status_client as status
from freqtrade_ratekit.sim.harness import find_free_port
from tests.test_metrics import NOW, FakeComponent, fiat_snapshot, sample_runtime

USERNAME = "freqtrader"
PASSWORD = "s3cret-Passw0rd"

_basic = HTTPBasic(auto_error=False)


def _basic_auth(credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> str:
    if credentials is not None and (
        secrets.compare_digest(credentials.username, USERNAME)
        and secrets.compare_digest(credentials.password, PASSWORD)
    ):
        return credentials.username
    raise HTTPException(status_code=401, detail="Unauthorized")


def _ping_app() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/ping")
    def ping() -> dict[str, str]:
        return {"status": "pong"}

    return app


def ratekit_app() -> FastAPI:
    app = _ping_app()
    app.include_router(api.router, prefix="/api/v1", dependencies=[Depends(_basic_auth)])
    return app


class Server:
    """A uvicorn server in a daemon thread on a free 127.0.0.1 port."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


@pytest.fixture(scope="module")
def ratekit_server() -> Iterator[Server]:
    with Server(ratekit_app()) as server:
        yield server


@pytest.fixture(scope="module")
def plain_bot_server() -> Iterator[Server]:
    with Server(_ping_app()) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("USERNAME", "PASSWORD", "LISTEN_IP_ADDRESS", "LISTEN_PORT"):
        monkeypatch.delenv(f"FREQTRADE__API_SERVER__{name}", raising=False)
    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.chdir(tmp_path)  # no stray config.json
    runtime.replace(sample_runtime())
    yield
    runtime.replace(None)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{find_free_port()}"


def credentials(password: str = PASSWORD) -> list[str]:
    return ["--username", USERNAME, "--password", password]


def test_prints_tables_of_every_section(
    ratekit_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code = status.main(["--url", ratekit_server.url, *credentials()])

    out = capsys.readouterr().out
    assert code == status.EXIT_OK
    for expected in (
        "Rate cache",
        "88.0%",  # entry hit ratio
        "LUNA/USDT",
        "BadSymbol",
        "42 pairs",  # last pre-warm
        "1 failed (LUNA/USDT)",
        "Fiat prices",
        "btc/usd",
        "65010",
        "REQUEST_WEIGHT",
        "77.1%",  # 1234 of an effective 1600
        "degraded",
        "GET api/v3/ticker/bookTicker",
        "2 batch calls, reads 3 from the batch (age p50 ≤ 0.30 s) / 2 per pair (failed 2)",
        "2 iterations, p50 ≤ 0.50 s, p99 ≤ 2.50 s",
        "1 failed calls, last: ConnectionError: reset",
        "Price stream (watch_bids_asks): not connected, 3 pairs",
        "Reader snapshots",
        "profit USDT/USD",
        ratekit_server.url,
        # who else spends the scope's budget, and who goes first
        "non-bot commands (download-data, ...) at most 50% of each (weights.reserve 0.5)",
        "2 calls waiting now, waited 3.50 s for budget in all",
        "Non-bot clients of this scope",
        "download-data",
        "list-markets",
        "host-1 / 4242",
        "742",  # the download's weight
        "48 s",  # ... and how long it waited
    ):
        assert expected in out, expected
    # worst cached rates first: the failing pair is listed before the fresh one
    assert out.index("LUNA/USDT") < out.index("65000.5")
    assert PASSWORD not in out


def test_top_limits_the_lists(ratekit_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert status.main(["--url", ratekit_server.url, *credentials(), "--top", "1"]) == 0

    out = capsys.readouterr().out
    assert "Cached rates (1 of 4" in out
    assert "Endpoints by weight (1 of 2)" in out
    assert "POST api/v3/order" not in out  # the lighter endpoint is cut


def test_json_prints_the_status_document(
    ratekit_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code = status.main(["--url", ratekit_server.url, *credentials(), "--json"])

    assert code == 0
    assert json.loads(capsys.readouterr().out) == sample_runtime().status()


def test_connects_with_the_config_api_server_section(
    ratekit_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = int(ratekit_server.url.rsplit(":", 1)[1])
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "api_server": {
                    "enabled": True,
                    "listen_ip_address": "0.0.0.0",
                    "listen_port": port,
                    "username": USERNAME,
                    "password": "stale-password",
                },
            }
        )
    )
    # Freqtrade's own environment override wins over the file, as it does for the bot
    monkeypatch.setenv("FREQTRADE__API_SERVER__PASSWORD", PASSWORD)

    assert status.main(["-c", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exchange"] == "binance"
    # and config.json in the working directory is the default, like freqtrade-client
    assert status.main(["--json"]) == 0


def test_wrong_password_names_the_problem_and_the_url(
    ratekit_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code = status.main(["--url", ratekit_server.url, *credentials("wrong-one")])

    err = capsys.readouterr().err
    assert code == status.EXIT_UNAUTHORIZED
    assert "wrong username or password" in err
    assert ratekit_server.url in err
    assert "wrong-one" not in err


def test_missing_credentials_say_how_to_give_them(
    ratekit_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code = status.main(["--url", ratekit_server.url])

    assert code == status.EXIT_UNAUTHORIZED
    assert "--username/--password" in capsys.readouterr().err


def test_bot_without_ratekit(plain_bot_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code = status.main(["--url", plain_bot_server.url, *credentials()])

    err = capsys.readouterr().err
    assert code == status.EXIT_NOT_ENABLED
    assert "ratekit is not enabled" in err
    assert plain_bot_server.url in err


def test_not_a_freqtrade_api(plain_bot_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code = status.main(["--url", f"{plain_bot_server.url}/elsewhere", *credentials()])

    assert code == status.EXIT_ERROR
    assert "no Freqtrade REST API" in capsys.readouterr().err


def test_ratekit_installed_but_not_active(
    ratekit_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime.replace(None)

    code = status.main(["--url", ratekit_server.url, *credentials()])

    assert code == status.EXIT_NOT_ENABLED
    assert "not active" in capsys.readouterr().err


def test_connection_refused_hides_a_password_in_the_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = closed_port_url()
    with_credentials = url.replace("http://", f"http://{USERNAME}:{PASSWORD}@")

    code = status.main(["--url", with_credentials])

    err = capsys.readouterr().err
    assert code == status.EXIT_UNREACHABLE
    assert "connection refused" in err
    assert url.removeprefix("http://").split(":")[1] in err  # the port is named
    assert PASSWORD not in err


def test_no_config_and_no_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert status.main([]) == status.EXIT_ERROR
    assert "pass -c CONFIG" in capsys.readouterr().err


def test_unreadable_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")

    assert status.main(["-c", str(broken)]) == status.EXIT_ERROR
    assert "could not load" in capsys.readouterr().err


def test_usage_errors_return_codes_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert status.main(["--help"]) == 0
    assert status.main(["--no-such-flag"]) == status.EXIT_USAGE
    assert status.main(["--url", "http://127.0.0.1:1", "--watch", "0"]) == status.EXIT_USAGE
    assert status.main(["--json", "--watch", "1"]) == status.EXIT_USAGE
    capsys.readouterr()


def test_watch_redraws_and_survives_a_failed_refresh(ratekit_server: Server) -> None:
    client = status.StatusClient(
        status.Connection(ratekit_server.url, USERNAME, PASSWORD), timeout=5
    )
    output = io.StringIO()
    console = Console(file=output, width=220)
    steps = iter(["degrade", "break", "stop"])
    current = runtime.current()
    assert current is not None

    def sleep(_: float) -> None:
        step = next(steps)
        if step == "degrade":  # the next refresh shows a new figure
            fiat = fiat_snapshot()
            fiat["pairs"] = [{**fiat["pairs"][2], "pair": "sol/usd"}]
            current.fiat = FakeComponent(fiat)
        elif step == "break":  # the next refresh fails: the bot stopped ratekit
            runtime.replace(None)
        else:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        status.watch(client, console, 1.0, top=5, sleep=sleep, clock=lambda: NOW)

    shown = output.getvalue()
    assert "refresh failed" in shown
    assert "not active" in shown
    assert "sol/usd" in shown  # the last good figures stay on screen


def test_metrics_route_serves_the_exposition_behind_auth(ratekit_server: Server) -> None:
    url = f"{ratekit_server.url}{api.PREFIX}/metrics"

    denied = requests.get(url, timeout=5)
    response = requests.get(url, auth=(USERNAME, PASSWORD), timeout=5)

    assert denied.status_code == 401
    assert response.status_code == 200
    assert response.headers["content-type"] == metrics.CONTENT_TYPE
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"ratekit_info", "ratekit_cache_hits", "ratekit_weight_pool_used"} <= families
