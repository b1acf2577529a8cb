"""The documents of `documents.py`: what OpenAPI shows, what the routes send, what mypy checks.

The API server here is Freqtrade's own app composition (its routers, its default response
class, its auth dependency) with the ratekit router mounted as the `api_server` hook mounts
it, served over HTTP by uvicorn.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import orjson
import pytest
import requests
from fastapi import FastAPI

from freqtrade_ratekit import runtime
from freqtrade_ratekit.rates.cache import RateCache
from tests.helpers import FakeClock
from tests.test_metrics import FakeComponent, sample_runtime
from tests.test_status_cli import Server

REPO = Path(__file__).resolve().parent.parent

# route -> (response schema, key fields its schema must name)
ROUTES = {
    "status": ("RatekitStatus", {"version", "settings", "rate_cache", "fiat", "weights"}),
    "cache": ("RatekitRateBook", {"sides", "last_prewarm", "refresher", "settings"}),
    "fiat": ("RatekitFiat", {"pairs", "coin_list", "calls", "paused_until"}),
    "weights": ("RatekitWeights", {"pools", "endpoints", "wait_histogram", "totals"}),
}


def freqtrade_app() -> FastAPI:
    """Freqtrade's ApiServer app as `ApiServer.__init__` builds it, plus the ratekit routes."""
    from freqtrade.rpc.api_server import webserver
    from freqtrade.rpc.api_server.api_auth import http_basic_or_jwt_token

    from freqtrade_ratekit.patches.api_server import mount_routes

    tags = getattr(webserver, "_OPENAPI_TAGS", None)  # Freqtrade 2026.x names its tags
    app = FastAPI(
        title="Freqtrade API",
        redoc_url=None,
        default_response_class=webserver.FTJSONResponse,
        **({"openapi_tags": tags} if tags else {}),
    )

    async def nothing() -> None:
        return None

    stand_in = SimpleNamespace(  # what configure_app uses of the ApiServer instance
        handle_rpc_exception=lambda request, exc: None,
        _api_startup_event=nothing,  # Freqtrade 2025.12 (2026.x uses a lifespan)
        _api_shutdown_event=nothing,
    )
    webserver.ApiServer.configure_app(stand_in, app, {"api_server": {"CORS_origins": []}})
    mount_routes(app)
    app.dependency_overrides[http_basic_or_jwt_token] = lambda: "freqtrader"
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server(freqtrade_app()) as running:
        yield running


@pytest.fixture(scope="module")
def openapi(server: Server) -> dict[str, Any]:
    response = requests.get(f"{server.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(autouse=True)
def sample() -> Iterator[runtime.Runtime]:
    current = sample_runtime()
    runtime.replace(current)
    yield current
    runtime.replace(None)


def strict_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """The ratekit component schemas with no undeclared key allowed anywhere."""
    schemas = copy.deepcopy(openapi["components"]["schemas"])
    for name, schema in schemas.items():
        if name.startswith("Ratekit") and "properties" in schema:
            schema["additionalProperties"] = False
    return schemas


def validate(document: Any, schema_name: str, openapi: dict[str, Any]) -> None:
    schema = {
        "$ref": f"#/components/schemas/{schema_name}",
        "components": {"schemas": strict_schemas(openapi)},
    }
    jsonschema.validate(document, schema)


# -- OpenAPI ----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_openapi_shows_each_route_with_its_document(route: str, openapi: dict[str, Any]) -> None:
    schema_name, key_fields = ROUTES[route]
    operation = openapi["paths"][f"/api/v1/ratekit/{route}"]["get"]
    schema = json.dumps(operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert f"#/components/schemas/{schema_name}" in schema
    component = openapi["components"]["schemas"][schema_name]
    assert key_fields <= set(component["properties"])
    assert key_fields & set(component["required"])
    assert "ratekit" in operation["tags"]


def test_openapi_documents_the_inactive_section_and_the_nested_documents(
    openapi: dict[str, Any],
) -> None:
    schemas = openapi["components"]["schemas"]
    assert schemas["RatekitInactive"]["properties"]["active"] == {
        "const": False,
        "title": "Active",
        "type": "boolean",
    }
    cache_route = openapi["paths"]["/api/v1/ratekit/cache"]["get"]["responses"]["200"]
    assert "RatekitInactive" in json.dumps(cache_route)
    assert {"RatekitCacheEntry", "RatekitPool", "RatekitHistogram", "RatekitReaders"} <= set(
        schemas
    )
    assert "hit_ratio" in schemas["RatekitCacheSide"]["properties"]
    # Freqtrade's own schemas are still there: no ratekit name shadows one of them
    assert "ShowConfig" in schemas


def test_metrics_route_stays_text(server: Server, openapi: dict[str, Any]) -> None:
    operation = openapi["paths"]["/api/v1/ratekit/metrics"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/plain"}
    response = requests.get(f"{server.url}/api/v1/ratekit/metrics", timeout=10)
    assert response.headers["content-type"].startswith("text/plain; version=")


# -- the routes send the components' documents, byte for byte --------------------------------


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_route_json_is_the_components_document(
    route: str, server: Server, sample: runtime.Runtime, openapi: dict[str, Any]
) -> None:
    documents = {
        "status": sample.status,
        "cache": sample.rate_cache_status,
        "fiat": sample.fiat_status,
        "weights": sample.weights_status,
    }
    response = requests.get(f"{server.url}/api/v1/ratekit/{route}", timeout=10)
    assert response.status_code == 200
    # nothing dropped, nothing coerced: ints stay ints (a limit of 6000), None stays null,
    # free keys (per-endpoint histograms, settings) stay as they are
    assert response.content == orjson.dumps(documents[route]())
    validate(response.json(), ROUTES[route][0], openapi)


def test_ints_nulls_and_free_keys_survive_the_route(
    server: Server, sample: runtime.Runtime
) -> None:
    body = requests.get(f"{server.url}/api/v1/ratekit/weights", timeout=10).json()
    pool = body["pools"][0]
    assert pool["limit"] == 6000 and isinstance(pool["limit"], int)
    assert body["pools"][1]["server_used"] is None
    assert set(body["wait_histogram"]) == {"GET api/v3/ticker/bookTicker", "POST api/v3/order"}
    assert body["wait_histogram"]["POST api/v3/order"]["buckets"][-1] == ["+Inf", 6]
    status = requests.get(f"{server.url}/api/v1/ratekit/status", timeout=10).json()
    assert status["settings"] == json.loads(json.dumps(sample.settings.effective()))


def test_inactive_sections_match_their_schema(
    server: Server, sample: runtime.Runtime, openapi: dict[str, Any]
) -> None:
    sample.fiat = None
    sample.weights = None
    body = requests.get(f"{server.url}/api/v1/ratekit/status", timeout=10).json()
    assert body["fiat"] == {"active": False} and body["weights"] == {"active": False}
    validate(body, "RatekitStatus", openapi)
    assert requests.get(f"{server.url}/api/v1/ratekit/fiat", timeout=10).json() == {"active": False}


def test_a_real_caches_document_matches_the_schema(
    server: Server, sample: runtime.Runtime, openapi: dict[str, Any]
) -> None:
    clock = FakeClock()
    cache = RateCache(maxsize=10, ttl=5, stale_ttl=50, negative_ttl=5, timer=clock, name="exit")
    cache["BTC/USDT"] = 65000.0
    cache.mark_failed("LUNA/USDT", "BadSymbol")
    cache.get("ETH/USDT")
    clock.advance(7)
    book = sample.rate_cache_status()
    assert "sides" in book
    book["sides"]["exit"] = cache.snapshot()
    sample.rate_cache = FakeComponent(book)
    body = requests.get(f"{server.url}/api/v1/ratekit/cache", timeout=10).json()
    assert body["sides"]["exit"] == json.loads(json.dumps(cache.snapshot()))
    validate(body, "RatekitRateBook", openapi)


# -- mypy catches a renamed field -------------------------------------------------------------


def _mypy() -> list[str]:
    beside = Path(sys.executable).with_name("mypy")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("mypy")
    if found is None:
        pytest.skip("mypy is not installed in this environment")
    return [found]


def test_mypy_reports_a_renamed_field(tmp_path: Path) -> None:
    module = tmp_path / "reads_a_renamed_field.py"
    module.write_text(
        textwrap.dedent(
            """
            from freqtrade_ratekit.documents import RatekitCacheSide, RatekitPool, RatekitWeights

            def hits(side: RatekitCacheSide) -> int:
                return side["hit"]  # renamed: the document says "hits"

            def pool(weights: RatekitWeights) -> RatekitPool:
                return {**weights["pools"][0], "used_weight": 1.0}  # a key it does not declare

            def fine(side: RatekitCacheSide) -> float:
                return side["hit_ratio"]
            """
        )
    )
    result = subprocess.run(
        [
            *_mypy(),
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(module),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert 'TypedDict "RatekitCacheSide" has no key "hit"' in out, out
    assert "used_weight" in out, out
    assert out.count("error:") == 2, out
