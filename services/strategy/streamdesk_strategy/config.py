"""Settings of the strategy service (docs/strategies.md, "Live runtime", configuration)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from streamdesk.config import CommonSettings


class Settings(CommonSettings):
    """Environment of ``strategy``; the common variables (``DATABASE_URL``, ``REDIS_URL``,
    ``TRADING_MODE``, ``SCHWAB_*``...) come from :class:`CommonSettings`."""

    strategy_instance: str | None = Field(
        default=None, description="Instance name (heartbeat); default host-pid."
    )
    strategy_operator_id: UUID | None = Field(
        default=None,
        description="trades.user_id of strategy orders: an operator (required with SUPABASE_URL).",
    )
    strategy_poll_interval: float = Field(
        default=0.5, gt=0, le=60, description="Order status / fill read-back period (s)."
    )
    strategy_control_interval: float = Field(
        default=2.0, gt=0, le=300, description="Fallback poll of the strategies table (s)."
    )
    strategy_idle_interval: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Safety-net period while idle (s): order read-back with no open order, "
        "strategies poll while LISTEN is up; committed XREAD block after an empty read.",
    )
    strategy_block_ms: int = Field(
        default=1000, ge=10, le=60_000, description="XREAD BLOCK on the committed stream (ms)."
    )
    strategy_read_count: int = Field(
        default=100, ge=1, le=10_000, description="Committed messages read per XREAD."
    )
    strategy_checkpoint_interval: float = Field(
        default=5.0, gt=0, le=3600, description="Resume point written at least this often (s)."
    )
    strategy_max_strategies: int = Field(
        default=32, ge=1, le=1000, description="Most strategies one process runs."
    )
    strategy_max_tickers: int = Field(
        default=200, ge=1, le=10_000, description="Most tickers one strategy follows."
    )
    #: Test hook (restart idempotency): ``exit_before_insert`` makes the process exit with
    #: code 137 (as a kill -9) after a signal, before its trade row is inserted.
    strategy_fault: str = Field(default="", description="Test hook; empty in production.")
    backfill_enabled: bool = Field(
        default=False,
        description="Backfill new universe tickers and heal recorded gaps (compose: true).",
    )
    backfill_days: int = Field(default=5, ge=1, le=60, description="Minute history (days).")
    backfill_daily_days: int = Field(
        default=365, ge=0, le=7300, description="Daily history (days; 0 = none)."
    )
    backfill_rate: float = Field(
        default=2.0, gt=0, le=100, description="Price-history requests per second at most."
    )
    backfill_interval: float = Field(
        default=30.0, gt=0, le=3600, description="How often the universe and gaps are checked."
    )
