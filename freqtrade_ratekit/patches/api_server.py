"""Target `ApiServer.configure_app`: mount the ratekit routes on Freqtrade's own FastAPI app,
behind Freqtrade's own auth, when the bot's settings keep the API on."""

from __future__ import annotations

import functools
from typing import Any

from freqtrade_ratekit.patches._patcher import PATCHER
from freqtrade_ratekit.patches._state import active_settings

TARGET = PATCHER.target("api_server")


def _instrument() -> None:
    from freqtrade.rpc.api_server.webserver import ApiServer

    original = ApiServer.configure_app

    @functools.wraps(original)
    def configure_app(self: Any, app: Any, config: dict[str, Any]) -> None:
        original(self, app, config)
        settings = active_settings()
        if settings is not None and settings.api_enabled:
            mount_routes(app)

    TARGET.replace(ApiServer, "configure_app", configure_app)


def _uninstrument() -> None:
    TARGET.restore()


def mount_routes(app: Any) -> None:
    """Mount the ratekit router ahead of Freqtrade's UI catch-all, behind Freqtrade's auth."""
    from fastapi import Depends
    from freqtrade.rpc.api_server.api_auth import http_basic_or_jwt_token

    from freqtrade_ratekit.api import router

    before = len(app.router.routes)
    app.include_router(router, prefix="/api/v1", dependencies=[Depends(http_basic_or_jwt_token)])
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added
