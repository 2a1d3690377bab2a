"""Settings: typed, validated, errors name the variable."""

from __future__ import annotations

import pytest

from streamdesk.config import CommonSettings, ConfigError, TradingMode, load_settings

pytestmark = pytest.mark.unit


def test_defaults_are_paper_and_local() -> None:
    s = load_settings(CommonSettings, _env_file=None)
    assert s.trading_mode is TradingMode.PAPER
    assert s.database_url.startswith("postgresql://")
    assert s.tickers


def test_tickers_parsed_from_csv() -> None:
    s = load_settings(CommonSettings, tickers=" spy, aapl ,msft", _env_file=None)
    assert s.tickers == ["SPY", "AAPL", "MSFT"]


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        ("stream_partitions", 0, "STREAM_PARTITIONS"),
        ("log_level", "LOUD", "LOG_LEVEL"),
        ("database_url", "mysql://x", "DATABASE_URL"),
        ("redis_url", "http://x", "REDIS_URL"),
        ("tickers", "AAPL,NOT A TICKER", "TICKERS"),
        ("trading_mode", "yolo", "TRADING_MODE"),
        ("heartbeat_ttl", -1, "HEARTBEAT_TTL"),
    ],
)
def test_bad_value_is_rejected_naming_the_variable(field: str, value: object, name: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(CommonSettings, _env_file=None, **{field: value})
    assert name in str(err.value)


def test_secret_values_never_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(CommonSettings, _env_file=None, database_url="mysql://u:hunter2@h/db")
    assert "hunter2" not in str(err.value)


def test_live_mode_refuses_placeholder_credentials() -> None:
    with pytest.raises(ConfigError, match="SCHWAB_API_KEY"):
        load_settings(CommonSettings, _env_file=None, trading_mode="live")
    s = load_settings(
        CommonSettings,
        _env_file=None,
        trading_mode="live",
        schwab_api_key="real-key-123",
        schwab_app_secret="real-secret-456",
    )
    assert s.trading_mode is TradingMode.LIVE


def test_env_file_is_read(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"  # type: ignore[operator]
    env.write_text("TICKERS=IWM\nSTREAM_PARTITIONS=8\n")
    s = load_settings(CommonSettings, _env_file=str(env))
    assert s.tickers == ["IWM"] and s.stream_partitions == 8


def test_split_csv_keeps_inner_spaces_and_case_on_request() -> None:
    from streamdesk.config import split_csv

    assert split_csv(" spy, AAPL  251219C00200000 ,,") == ["SPY", "AAPL  251219C00200000"]
    assert split_csv("streamer, trade-executor", upper=False) == ["streamer", "trade-executor"]
    assert split_csv(["x"]) == ["x"]
