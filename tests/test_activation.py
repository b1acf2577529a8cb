"""install()/uninstall(): symmetric, idempotent, version-guarded, inert when disabled."""

import logging

import pytest
from freqtrade.configuration import Configuration
from freqtrade.enums import RunMode
from freqtrade.exceptions import OperationalException
from freqtrade.exchange import Exchange
from freqtrade.freqtradebot import FreqtradeBot
from freqtrade.rpc import rpc as rpc_module
from freqtrade.rpc.api_server.webserver import ApiServer
from sqlalchemy import event
from sqlalchemy.orm import Session

from freqtrade_ratekit import patches, runtime
from tests.helpers import write_config

PATCHABLE = [
    (Configuration, "load_config"),
    (Exchange, "__init__"),
    (Exchange, "_init_ccxt"),
    (Exchange, "get_rate"),
    (Exchange, "close"),
    (FreqtradeBot, "startup"),
    (FreqtradeBot, "_refresh_active_whitelist"),
    (rpc_module.RPC, "_rpc_trade_status"),
    (rpc_module.RPC, "_rpc_trade_statistics"),
    (rpc_module, "CryptoToFiatConverter"),
    (ApiServer, "configure_app"),
]


def originals():
    return {(owner, name): owner.__dict__.get(name) for owner, name in PATCHABLE}


@pytest.fixture
def clean():
    before = originals()
    yield before
    patches.uninstall()
    assert originals() == before


def load(tmp_path, ratekit):
    path = write_config(tmp_path, ratekit=ratekit)
    return Configuration({"config": [str(path)]}, RunMode.OTHER).get_config()


def test_install_is_idempotent_and_uninstall_restores(clean):
    assert patches.install() is True
    assert patches.install() is True
    assert patches.is_installed()
    assert Configuration.__dict__["load_config"] is not clean[(Configuration, "load_config")]
    patches.uninstall()
    patches.uninstall()
    assert originals() == clean
    assert not patches.is_installed()


@pytest.mark.parametrize("section", [None, {"enabled": False}])
def test_disabled_leaves_freqtrade_untouched(clean, tmp_path, section, caplog):
    patches.install()
    with caplog.at_level(logging.INFO):
        load(tmp_path, section)
    assert not patches.is_active()
    assert runtime.current() is None
    changed = {key for key, value in originals().items() if value is not clean[key]}
    assert changed == {(Configuration, "load_config")}
    assert "Freqtrade runs unpatched" in caplog.text


def test_enabled_activates_and_uninstall_restores_everything(clean, tmp_path):
    patches.install()
    config = load(tmp_path, {"enabled": True})
    assert config["ratekit"]["enabled"] is True
    assert patches.is_active()
    assert runtime.current() is not None
    changed = {key for key, value in originals().items() if value is not clean[key]}
    assert changed == set(clean)
    assert event.contains(Session, "after_commit", patches._invalidate_if_written)
    patches.uninstall()
    assert runtime.current() is None
    assert not event.contains(Session, "after_commit", patches._invalidate_if_written)
    assert not event.contains(Session, "after_flush", patches._note_write)


def test_bad_section_stops_loading(clean, tmp_path):
    patches.install()
    with pytest.raises(OperationalException, match=r"ratekit\.weights\.mode = 'fast'"):
        load(tmp_path, {"enabled": True, "weights": {"mode": "fast"}})
    assert not patches.is_active()


@pytest.mark.parametrize("version", ["2025.11", "2026.10", "2024.1", "develop"])
def test_version_guard_refuses_unsupported(clean, monkeypatch, caplog, version):
    monkeypatch.setattr(patches, "freqtrade_version", lambda: version)
    with caplog.at_level(logging.ERROR):
        assert patches.install() is False
    assert not patches.is_installed()
    assert originals() == clean
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert version in errors[0].getMessage()
    assert "2025.12 to 2026.9" in errors[0].getMessage()


@pytest.mark.parametrize("version", ["2025.12", "2026.1", "2026.9", "2026.9.1", "2026.9-dev-abc"])
def test_version_guard_accepts_supported(version):
    assert patches.version_supported(version)
