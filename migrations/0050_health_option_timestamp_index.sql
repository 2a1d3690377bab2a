-- Health: the age of the newest option quote is read every check round. option_prices is
-- keyed by contract (ticker = OCC symbol), so without this index max("timestamp") would scan
-- whole partitions. A partitioned index: every existing and future daily partition gets one.
CREATE INDEX IF NOT EXISTS option_prices_timestamp_idx ON option_prices ("timestamp");
