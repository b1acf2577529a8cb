"""install()/uninstall(): symmetric, idempotent, version-guarded, inert when disabled."""

import logging

import pytest
from freqtrade.configuration import Configuration
from freqtrade.data.history import history_utils
from freqtrade.enums import RunMode
from freqtrade.exceptions import OperationalException
from freqtrade.exchange import Exchange
from freqtrade.freqtradebot import FreqtradeBot
from freqtrade.rpc import rpc as rpc_module
from freqtrade.rpc.api_server.webserver import ApiServer
from sqlalchemy import event
from sqlalchemy.orm import Session

from freqtrade_ratekit import patches, runtime
from freqtrade_ratekit.patches import readers
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
    (history_utils, "retrieve_progress_tracker"),
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
    assert event.contains(Session, "after_commit", readers.invalidate_if_written)
    patches.uninstall()
    assert runtime.current() is None
    assert not event.contains(Session, "after_commit", readers.invalidate_if_written)
    assert not event.contains(Session, "after_flush", readers.note_write)


def test_each_target_uninstruments_only_its_own_patches(clean, tmp_path):
    from freqtrade_ratekit.patches import exchange

    patches.install()
    load(tmp_path, {"enabled": True})
    exchange._uninstrument()
    restored = {key for key, value in originals().items() if value is clean[key]}
    assert restored == {key for key in PATCHABLE if key[0] in (Exchange, FreqtradeBot)}
    assert patches.is_active()  # the other targets stay


def test_hooks_use_the_settings_parsed_at_load(clean, tmp_path, mocker):
    from freqtrade_ratekit import config as config_module
    from freqtrade_ratekit.fiat.converter import BackgroundFiatConverter

    patches.install()
    load(tmp_path, {"enabled": True, "fiat": {"coingecko_url": "http://127.0.0.1:9/"}})
    settings = runtime.current().settings
    assert patches.current_settings() is settings
    for name in ("parse_settings", "validate_bot_config"):
        mocker.patch.object(config_module, name, side_effect=AssertionError("re-parsed"))
    # a config without its ratekit section (Freqtrade may copy or trim what it hands on)
    converter = rpc_module.CryptoToFiatConverter({"user_data_dir": str(tmp_path)})
    assert isinstance(converter, BackgroundFiatConverter)
    assert runtime.current().fiat is converter
    patches.uninstall()
    assert not converter.is_running


def test_reloading_a_disabled_config_turns_ratekit_off(clean, tmp_path):
    patches.install()
    load(tmp_path, {"enabled": True})
    assert patches.current_settings() is not None
    load(tmp_path, {"enabled": False})  # /reload_config after switching it off
    assert runtime.current() is None
    assert patches.current_settings() is None
    converter = rpc_module.CryptoToFiatConverter({})
    assert type(converter).__module__ == "freqtrade.rpc.fiat_convert"  # stock's


def test_uninstall_restores_the_coingecko_redirect(clean):
    from freqtrade.util.coin_gecko import FtCoinGeckoApi

    from freqtrade_ratekit.sim.redirect import redirect_coingecko

    stock = FtCoinGeckoApi.__dict__["__init__"]
    redirect_coingecko("http://127.0.0.1:9")
    redirect_coingecko("http://127.0.0.1:10")  # re-pointing does not stack wrappers
    assert FtCoinGeckoApi.__dict__["__init__"].__wrapped__ is stock
    assert FtCoinGeckoApi().api_base_url == "http://127.0.0.1:10/"
    patches.uninstall()
    assert FtCoinGeckoApi.__dict__["__init__"] is stock


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
