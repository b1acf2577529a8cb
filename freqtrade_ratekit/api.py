"""The ratekit REST routes, mounted on Freqtrade's own FastAPI app by `patches/api_server.py`.

Routes are plain functions over `runtime.current()`; authentication is Freqtrade's own
dependency, added where the router is mounted, so every route is protected like `/api/v1/*`.

Each JSON route declares its document (`documents.py`) as its response model, so the OpenAPI
document of Freqtrade's API server (`/docs`) shows the ratekit routes with their schemas. The
model is declared through `responses` rather than `response_model=`: FastAPI would validate
the answer against a `response_model` and coerce it (an int limit becomes a float, a key the
schema does not list is dropped), and a document that failed validation would be a 500 on a
monitoring route. The documents are checked by mypy where they are built and read; the route
serialises them exactly as it always has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import PlainTextResponse

from freqtrade_ratekit import runtime
from freqtrade_ratekit.documents import (
    RatekitFiat,
    RatekitInactive,
    RatekitRateBook,
    RatekitStatus,
    RatekitWeights,
)

PREFIX = "/api/v1/ratekit"

router = APIRouter(prefix="/ratekit", tags=["ratekit"])

Route = TypeVar("Route", bound=Callable[..., Any])


def _json_route(path: str, model: Any, description: str) -> Callable[[Route], Route]:
    """`GET path`, its answer documented in OpenAPI as `model` but not validated against it
    (`response_model=None`, see above); a component's route also answers `{"active": false}`
    while the component does not run."""
    return router.get(
        path,
        response_model=None,
        responses={200: {"model": model, "description": description}},
    )


def _runtime() -> runtime.Runtime:
    current = runtime.current()
    if current is None:
        raise HTTPException(status_code=503, detail="ratekit is not active in this process")
    return current


@_json_route("/status", RatekitStatus, "Versions, effective settings and every component.")
def ratekit_status() -> RatekitStatus:
    return _runtime().status()


@_json_route(
    "/cache",
    RatekitRateBook | RatekitInactive,
    "Both side caches, the refresher and the last runs.",
)
def ratekit_cache() -> RatekitRateBook | RatekitInactive:
    return _runtime().rate_cache_status()


@_json_route("/fiat", RatekitFiat | RatekitInactive, "Fiat prices and CoinGecko calls.")
def ratekit_fiat() -> RatekitFiat | RatekitInactive:
    return _runtime().fiat_status()


@_json_route(
    "/weights",
    RatekitWeights | RatekitInactive,
    "Weight pools, endpoints and the wait histogram.",
)
def ratekit_weights() -> RatekitWeights | RatekitInactive:
    return _runtime().weights_status()


@router.get("/metrics", response_class=PlainTextResponse)
def ratekit_metrics() -> Response:
    from freqtrade_ratekit.metrics import CONTENT_TYPE, render

    return Response(content=render(_runtime()), media_type=CONTENT_TYPE)
