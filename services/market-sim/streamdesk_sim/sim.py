"""The simulator object: builds the parts from the settings and wires them together.

:class:`Sim` is what the REST routes and the websocket reach (``app.state.sim``): the session
clock, the market, the token issuer, the fault switches, the sent log, the streamer server,
the paper broker (which reports to the streamer's ``ACCT_ACTIVITY``) and the market loops
(which publish to the streamer and fill the broker's orders).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from streamdesk_sim.broker import Broker
from streamdesk_sim.clock import SessionClock
from streamdesk_sim.config import Settings
from streamdesk_sim.faults import Faults
from streamdesk_sim.loadgen import LoadBook
from streamdesk_sim.market import Market
from streamdesk_sim.sentlog import SentLog
from streamdesk_sim.streaming import Streamer
from streamdesk_sim.ticker import Ticker
from streamdesk_sim.tokens import TokenIssuer


class Sim:
    """Simulator state and behaviour shared by REST routes and the websocket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        start = datetime.fromisoformat(settings.clock_start) if settings.clock_start else None
        self.clock = SessionClock(settings.clock, settings.clock_speed, start)
        self.market = Market(
            settings.seed,
            settings.volatility,
            max_symbols=settings.max_simulated + settings.load_symbols,
        )
        self.tokens = TokenIssuer(
            settings.token_secret, settings.access_token_ttl, settings.refresh_token_ttl
        )
        self.faults = Faults()
        self.sent = SentLog(settings.sent_log_size, settings.sent_log_total)
        self.account_hash = (
            hashlib.sha256(f"streamdesk-sim:{settings.account_number}".encode()).hexdigest().upper()
        )
        self.correl_id = hashlib.md5(  # noqa: S324 - an identifier, not security
            f"correl:{settings.seed}".encode()
        ).hexdigest()
        self.customer_id = hashlib.sha256(b"customer").hexdigest()
        self.streamer = Streamer(
            settings, self.clock, self.market, self.tokens, self.faults, self.sent, self.correl_id
        )
        self.broker = Broker(settings, self.market, self.clock, self.streamer.send_activity)
        self.load_symbols: list[str] = [f"LD{i:05d}" for i in range(settings.load_symbols)]
        self.load_book = (
            LoadBook(self.market, self.load_symbols, settings.seed, settings.volatility)
            if self.load_symbols
            else None
        )
        if self.load_book is not None:
            self.market.on_read = self.load_book.sync
            self.sent.attach_load(self.load_book.index, self.load_book.sent)
        self.ticker = Ticker(
            settings,
            self.clock,
            self.market,
            self.streamer,
            self.broker,
            self.faults,
            self.load_book,
        )
        for sym in settings.option_underlyings:
            self.market.equity(sym)
