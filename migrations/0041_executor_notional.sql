-- trade-executor: the notional an order was checked with (limit price, or the touch for a
-- market order), so per-day notional and open-order buying-power holds can be summed.
ALTER TABLE trades ADD COLUMN notional numeric;
