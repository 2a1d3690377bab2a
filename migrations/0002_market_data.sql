-- Market data: per-second time series, natively partitioned by day so that retention drops
-- partitions (never DELETE). Partitions are created by `streamdesk partitions` (run by
-- `streamdesk migrate` too, and by the writer for the days it writes).

CREATE TABLE equity_data (
    ticker      text             NOT NULL,
    "timestamp" timestamptz      NOT NULL,
    price       double precision NOT NULL,
    volume      bigint           NOT NULL DEFAULT 0,
    bid         double precision,
    ask         double precision,
    cum_volume  bigint,
    PRIMARY KEY (ticker, "timestamp")
) PARTITION BY RANGE ("timestamp");
COMMENT ON TABLE equity_data IS
    'One row per ticker per second with activity; volume = shares traded in that second.';

CREATE TABLE indicators (
    ticker      text             NOT NULL,
    "timestamp" timestamptz      NOT NULL,
    sma9        double precision,
    vwap        double precision,
    PRIMARY KEY (ticker, "timestamp")
) PARTITION BY RANGE ("timestamp");
COMMENT ON TABLE indicators IS 'Indicator values of one ticker at the end of each second.';

CREATE TABLE option_prices (
    ticker             text             NOT NULL,
    "timestamp"        timestamptz      NOT NULL,
    underlying         text             NOT NULL,
    option_type        text             NOT NULL CHECK (option_type IN ('CALL', 'PUT')),
    strike_price       double precision NOT NULL,
    expiration_date    date             NOT NULL,
    last_price         double precision,
    bid                double precision,
    ask                double precision,
    delta              double precision,
    gamma              double precision,
    theta              double precision,
    vega               double precision,
    rho                double precision,
    implied_volatility double precision,
    volume             bigint,
    open_interest      bigint,
    underlying_price   double precision,
    PRIMARY KEY (ticker, "timestamp")
) PARTITION BY RANGE ("timestamp");
COMMENT ON TABLE option_prices IS 'One row per option contract per second with a change.';

-- 1-minute bars: the rollup that outlives the per-second retention window.
CREATE TABLE bars_1m (
    ticker  text             NOT NULL,
    bucket  timestamptz      NOT NULL,
    open    double precision NOT NULL,
    high    double precision NOT NULL,
    low     double precision NOT NULL,
    close   double precision NOT NULL,
    volume  bigint           NOT NULL,
    vwap    double precision,
    PRIMARY KEY (ticker, bucket)
);

-- Periods without data from the streamer (disconnects), shown by health and the dashboard.
CREATE TABLE stream_gaps (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source     text        NOT NULL DEFAULT 'streamer',
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    symbols    text[]      NOT NULL DEFAULT '{}',
    reason     text        NOT NULL DEFAULT ''
);
CREATE INDEX stream_gaps_open ON stream_gaps (started_at) WHERE ended_at IS NULL;

-- Registry of the time-series tables that `streamdesk partitions` manages.
CREATE TABLE partitioned_tables (
    table_name text PRIMARY KEY
);
INSERT INTO partitioned_tables VALUES ('equity_data'), ('indicators'), ('option_prices');
