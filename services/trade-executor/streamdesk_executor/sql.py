"""Every SQL statement of the executor, beside :mod:`.store` which runs them.

Status words are written from :class:`streamdesk.models.TradeStatus` (never typed as
literals), so the enum is the one definition of the ``trades.status`` vocabulary.
"""

from __future__ import annotations

from streamdesk.models import Instruction, TradeStatus


def sql_list(*values: str) -> str:
    """``'a', 'b'``: SQL literals of enum values (constants only; never user input)."""
    return ", ".join(f"'{v}'" for v in values)


S = TradeStatus

#: Statuses in which an order may exist at the broker and is not final.
UNSETTLED = (S.SUBMITTING, S.WORKING, S.UNKNOWN, S.CANCEL_REQUESTED)

#: Instructions that spend buying power (a sell-to-open holds margin like a buy).
_BUYING_POWER = (
    Instruction.BUY,
    Instruction.BUY_TO_OPEN,
    Instruction.BUY_TO_CLOSE,
    Instruction.SELL_TO_OPEN,
)

# `u` has an order open at the broker (or possibly so), as the one-open-order index counts it:
# top-level orders only (a bracket's legs live in their entry's tree; migration 0090).
_OPEN_IN_SYMBOL = f"""
    u.parent_id IS NULL
    AND (u.status IN ({sql_list(S.SUBMITTING, S.WORKING, S.UNKNOWN)})
         OR (u.status = '{S.CANCEL_REQUESTED}' AND u.submitted_at IS NOT NULL))
"""

# The oldest pending trade whose symbol has no unsettled order; no locks. $1 account.
PEEK = f"""
SELECT t.id, t.symbol FROM trades t
WHERE t.status = '{S.PENDING}' AND (t.account_hash IS NULL OR t.account_hash = $1)
  AND NOT EXISTS (
      SELECT 1 FROM trades u
      WHERE u.account_hash = $1 AND u.symbol = upper(t.symbol) AND u.id <> t.id
            AND {_OPEN_IN_SYMBOL})
ORDER BY t.id
LIMIT 1
"""

# Serializes the claims of one account across executors. $1 account.
LOCK_ACCOUNT = "SELECT pg_advisory_xact_lock(hashtext($1))"

# Claim the oldest pending trade whose symbol has no unsettled order, and gather the facts the
# risk rules need in the same statement (one round trip). $1 account, $2 start of the trading
# day, $3 duplicate window (s).
CLAIM = f"""
WITH c AS (
    SELECT t.* FROM trades t
    WHERE t.status = '{S.PENDING}' AND (t.account_hash IS NULL OR t.account_hash = $1)
      AND NOT EXISTS (
          SELECT 1 FROM trades u
          WHERE u.account_hash = $1 AND u.symbol = upper(t.symbol) AND u.id <> t.id
            AND {_OPEN_IN_SYMBOL})
    ORDER BY t.id
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
)
SELECT c.*,
  (SELECT count(*) FROM trades
    WHERE account_hash = $1 AND parent_id IS NULL
      AND submitted_at > now() - interval '1 minute') AS ctx_per_minute,
  (SELECT coalesce(sum(notional), 0) FROM trades
    WHERE account_hash = $1 AND submitted_at >= $2 AND status <> '{S.REJECTED}')
    AS ctx_day_notional,
  (SELECT buying_power FROM account_balances WHERE account_hash = $1) AS ctx_buying_power,
  -- The broker's buying power already holds cash for the open orders it knew at the last
  -- sync; hold it here for the ones sent since.
  (SELECT coalesce(sum(o.notional), 0) FROM trades o
    WHERE o.account_hash = $1
      AND o.status IN ({sql_list(*UNSETTLED)})
      AND o.instruction IN ({sql_list(*_BUYING_POWER)})
      AND o.submitted_at > coalesce(
          (SELECT b.updated_at FROM account_balances b WHERE b.account_hash = $1),
          '-infinity'::timestamptz)) AS ctx_open_buy,
  (SELECT d.id FROM trades d
    WHERE d.id < c.id AND d.parent_id IS NULL AND d.symbol = c.symbol
      AND d.instruction = c.instruction
      AND d.quantity = c.quantity AND d.order_type = c.order_type
      AND d.limit_price IS NOT DISTINCT FROM c.limit_price
      AND d.status <> '{S.REJECTED}'
      AND d.created_at >= c.created_at - make_interval(secs => $3::float8)
      AND d.created_at <= c.created_at
    ORDER BY d.id DESC LIMIT 1) AS ctx_duplicate_of,
  -- Defence in depth behind RLS (docs/supabase.md): a service (no user) or a listed operator.
  (c.user_id IS NULL OR EXISTS (SELECT 1 FROM operators op WHERE op.user_id = c.user_id))
    AS ctx_submitter_operator
FROM c
"""

# $1 trade id.
BROKER_ORDER_ID_OF = "SELECT broker_order_id FROM trades WHERE id = $1"

# Cancel requests of rows never sent. $1 account, $2 batch.
UNSENT_CANCELS = f"""
SELECT id FROM trades WHERE status = '{S.CANCEL_REQUESTED}' AND submitted_at IS NULL
  AND (account_hash IS NULL OR account_hash = $1) ORDER BY id LIMIT $2
"""

# `submitting` rows whose worker has been silent for longer than $2 s. $1 account, $3 batch.
ORPHANS = f"""
SELECT id FROM trades WHERE status = '{S.SUBMITTING}' AND account_hash = $1
  AND parent_id IS NULL AND submitted_at < now() - make_interval(secs => $2) ORDER BY id LIMIT $3
"""

# Top-level rows that may be at the broker and are not final: unlinked ones first (legs follow
# their entry: OPEN_LEGS). $1 account, $2 batch.
OPEN_ROWS = f"""
SELECT * FROM trades WHERE account_hash = $1 AND submitted_at IS NOT NULL AND parent_id IS NULL
  AND status IN ({sql_list(S.WORKING, S.UNKNOWN, S.CANCEL_REQUESTED)})
ORDER BY (broker_order_id IS NULL) DESC, id LIMIT $2
"""

# Which of the order ids $1 are linked to a trade already.
LINKED_ORDER_IDS = "SELECT broker_order_id FROM trades WHERE broker_order_id = ANY($1::text[])"

# One statement per transition: lock the row, check its status, update it, write the event.
# {sets} is ", col = $6, ..." from a whitelist of column names. The FOR UPDATE sub-select
# locks the row and, under READ COMMITTED, re-reads its latest version after any wait, so the
# status check cannot act on a stale status.
TRANSITION = """
WITH upd AS (
    UPDATE trades t SET status = $2, updated_at = now(){sets}
    FROM (SELECT id, status FROM trades WHERE id = $1 FOR UPDATE) o
    WHERE t.id = o.id AND o.status = ANY($3::text[])
    RETURNING o.status AS old_status
)
INSERT INTO trade_events (trade_id, from_status, to_status, reason, detail)
SELECT $1, old_status, $2, $4, $5::jsonb FROM upd
RETURNING from_status
"""

RAISE_ALERT = """
INSERT INTO executor_alerts (trade_id, kind, message, detail) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (trade_id, kind) WHERE resolved_at IS NULL DO NOTHING RETURNING id
"""

RESOLVE_ALERTS = """
UPDATE executor_alerts SET resolved_at = now() WHERE trade_id = $1 AND resolved_at IS NULL
"""

UPSERT_BALANCES = """
INSERT INTO account_balances (account_hash, cash, buying_power, liquidation_value, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (account_hash) DO UPDATE SET cash = EXCLUDED.cash,
  buying_power = EXCLUDED.buying_power, liquidation_value = EXCLUDED.liquidation_value,
  updated_at = EXCLUDED.updated_at
"""

UPSERT_POSITION = """
INSERT INTO positions (account_hash, symbol, asset_type, quantity, average_price, market_value,
                       day_pnl, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now())
ON CONFLICT (account_hash, symbol) DO UPDATE SET asset_type = EXCLUDED.asset_type,
  quantity = EXCLUDED.quantity, average_price = EXCLUDED.average_price,
  market_value = EXCLUDED.market_value, day_pnl = EXCLUDED.day_pnl, updated_at = now()
"""

# Positions the broker no longer reports. $1 account, $2 symbols it reports.
DELETE_GONE_POSITIONS = (
    "DELETE FROM positions WHERE account_hash = $1 AND NOT symbol = ANY($2::text[])"
)

# ---------------------------------------------------------------------------- brackets

# A bracket's exit as a row of its own, created with its event in the transaction that claims
# the entry $1 (already `submitting`): the entry's symbol, quantity, account, user, source,
# duration and submission. $2 leg, $3 instruction, $4 order type, $5 limit, $6 stop,
# $7 reason, $8 detail.
INSERT_LEG = f"""
WITH leg AS (
    INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, limit_price,
                        stop_price, duration, status, parent_id, leg, account_hash, user_id,
                        source, submitted_at, claimed_by)
    SELECT e.symbol, e.asset_type, $3, e.quantity, $4, $5, $6, e.duration, '{S.SUBMITTING}',
           e.id, $2, e.account_hash, e.user_id, e.source, e.submitted_at, e.claimed_by
    FROM trades e WHERE e.id = $1
    RETURNING id, status
)
INSERT INTO trade_events (trade_id, from_status, to_status, reason, detail)
SELECT id, NULL, status, $7, $8::jsonb FROM leg
RETURNING trade_id
"""

# The legs of entry $1.
LEGS_OF = "SELECT * FROM trades WHERE parent_id = $1 ORDER BY id"

# Legs that may be at the broker and are not final, with what the leg sync needs of their
# entry; a batch after id $3 (passes page through them: long-lived exits can outnumber a
# batch). $1 account, $2 batch.
OPEN_LEGS = f"""
SELECT l.*, p.status AS parent_status, p.broker_order_id AS parent_order_id,
       p.error AS parent_error
FROM trades l JOIN trades p ON p.id = l.parent_id
WHERE l.account_hash = $1 AND l.parent_id IS NOT NULL AND l.id > $3
  AND l.status IN ({sql_list(*UNSETTLED)})
ORDER BY l.id LIMIT $2
"""

# The broker's own status word and current stop (a trailing stop's moves) of row $1, written
# without an event when they changed. $2 broker status, $3 stop price (NULL: keep).
UPDATE_BROKER_VIEW = """
UPDATE trades SET broker_status = $2, stop_price = coalesce($3, stop_price), updated_at = now()
WHERE id = $1 AND (broker_status IS DISTINCT FROM $2
                   OR ($3::numeric IS NOT NULL AND stop_price IS DISTINCT FROM $3::numeric))
RETURNING id
"""

# ---------------------------------------------------------------------------- stop moves

# Rows with a requested stop move. $1 account, $2 batch.
REPLACE_REQUESTS = """
SELECT * FROM trades WHERE account_hash = $1 AND replace_stop_price IS NOT NULL
ORDER BY id LIMIT $2
"""

# Take the stop move $2 of row $1 (clear it) with its event, if it is still the one asked for:
# one executor takes each request. $3 reason, $4 detail.
TAKE_REPLACE = """
WITH upd AS (
    UPDATE trades t SET replace_stop_price = NULL, updated_at = now()
    FROM (SELECT id, status, replace_stop_price FROM trades WHERE id = $1 FOR UPDATE) o
    WHERE t.id = o.id AND o.replace_stop_price = $2
    RETURNING o.status
)
INSERT INTO trade_events (trade_id, from_status, to_status, reason, detail)
SELECT $1, status, status, $3, $4::jsonb FROM upd
RETURNING from_status
"""

# Row $1's order $2 was replaced by $3 at the broker: link the successor and its stop $4
# (NULL: keep), with the event (reason $5, detail $6). Nothing if the row moved on already.
RELINK = """
WITH upd AS (
    UPDATE trades t SET broker_order_id = $3, stop_price = coalesce($4, t.stop_price),
                        updated_at = now()
    FROM (SELECT id, status, broker_order_id FROM trades WHERE id = $1 FOR UPDATE) o
    WHERE t.id = o.id AND o.broker_order_id = $2
    RETURNING o.status
)
INSERT INTO trade_events (trade_id, from_status, to_status, reason, detail)
SELECT $1, status, status, $5, $6::jsonb FROM upd
RETURNING from_status
"""
