"""The ratekit REST routes, mounted on Freqtrade's own FastAPI app by `patches.py`.

Routes are plain functions over `runtime.current()`; authentication is Freqtrade's own
dependency, added where the router is mounted, so every route is protected like `/api/v1/*`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response

from freqtrade_ratekit import runtime

PREFIX = "/api/v1/ratekit"

router = APIRouter(prefix="/ratekit", tags=["ratekit"])


def _runtime() -> runtime.Runtime:
    current = runtime.current()
    if current is None:
        raise HTTPException(status_code=503, detail="ratekit is not active in this process")
    return current


@router.get("/status")
def ratekit_status() -> dict[str, Any]:
    return _runtime().status()


@router.get("/cache")
def ratekit_cache() -> dict[str, Any]:
    return _runtime().rate_cache_status()


@router.get("/fiat")
def ratekit_fiat() -> dict[str, Any]:
    return _runtime().fiat_status()


@router.get("/weights")
def ratekit_weights() -> dict[str, Any]:
    return _runtime().weights_status()


@router.get("/metrics")
def ratekit_metrics() -> Response:
    from freqtrade_ratekit.metrics import CONTENT_TYPE, render

    return Response(content=render(_runtime()), media_type=CONTENT_TYPE)
