"""A local fake Binance: the three market-data endpoints, deterministic, with faults.

Use it from tests, benchmarks and `make up` (``traderctl exchange-sim`` runs it alone)::

    with ExchangeSimulator(seed=1, symbols=120, port=0) as sim:
        client = BinanceClient(sim.base_url, ...)
        sim.set_faults(rules=[FaultRule(endpoint="klines", symbol="ETHUSDT", status=500)])
        sim.set_now(1_700_000_000_000)          # freeze the clock (None: real time)

It serves ``GET /api/v3/exchangeInfo``, ``/api/v3/ticker/24hr``, ``/api/v3/klines``,
``/api/v3/ping`` and ``/api/v3/time`` in Binance's exact JSON (see
:mod:`traderctl.worker.local.sim_payloads`), from a seeded walk that advances with the
clock (:mod:`traderctl.worker.local.price_walk`). Each answer carries
``X-MBX-USED-WEIGHT-1M`` computed with Binance's weights; past ``weight_limit`` per minute
it answers 429 with Retry-After. HTTP framing is in :mod:`traderctl.worker.local.sim_http`.

Faults (:mod:`traderctl.worker.local.sim_faults`; also settable over HTTP:
``POST /_sim/faults`` with the JSON of ``Faults.to_json()``, ``DELETE /_sim/faults``;
``POST /_sim/clock`` with ``{"now_ms": …}`` or ``{"advance_ms": …}``; ``GET /_sim/stats``):

* ``latency_ms``: every data request waits this long first;
* ``missing_symbols``: unknown to the exchange (absent from lists; klines → 400 -1121);
* ``rules``: the first matching ``FaultRule`` answers instead of the exchange — any
  status (5xx, 429 and 418 with Retry-After, 4xx), a raw ``body``, or the real body
  truncated (``malformed``); optionally only ``times`` times.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from traderctl.worker.errors import ExchangeSimulatorError
from traderctl.worker.intervals import INTERVAL_MS
from traderctl.worker.local.price_walk import PriceWalk, SymbolSpec
from traderctl.worker.local.sim_catalog import build_catalog
from traderctl.worker.local.sim_faults import FaultRule, Faults
from traderctl.worker.local.sim_http import Answer, SimServer, error_body
from traderctl.worker.local.sim_payloads import Payloads
from traderctl.worker.market.limits import BINANCE_WEIGHT_LIMIT, endpoint_weight

__all__ = ["ENDPOINTS", "ExchangeSimulator"]

log = logging.getLogger(__name__)

#: URL path -> endpoint name used in faults, stats and weights.
ENDPOINTS: dict[str, str] = {
    "/api/v3/exchangeInfo": "exchangeInfo",
    "/api/v3/ticker/24hr": "ticker/24hr",
    "/api/v3/klines": "klines",
    "/api/v3/ping": "ping",
    "/api/v3/time": "time",
}


class ExchangeSimulator:
    """The simulator's Python API: start/stop, base URL, faults, clock and stats."""

    def __init__(
        self,
        *,
        seed: int = 1,
        symbols: int = 120,
        host: str = "127.0.0.1",
        port: int = 0,
        now_ms: int | None = None,
        weight_limit: int = BINANCE_WEIGHT_LIMIT,
    ) -> None:
        if symbols < 1:
            raise ExchangeSimulatorError(f"--symbols must be at least 1 (got {symbols}).")
        self.seed = seed
        self.host = host
        self.requested_port = port
        self.weight_limit = weight_limit
        self.specs: list[SymbolSpec] = build_catalog(seed, symbols)
        self._by_symbol = {s.symbol: s for s in self.specs}
        self.payloads = Payloads(PriceWalk())
        self._now_override = now_ms
        self._lock = threading.Lock()
        self._faults = Faults()
        self._rule_uses: dict[int, int] = {}
        self._counts: Counter[tuple[str, int]] = Counter()
        self._weight_window = -1
        self._weight_used = 0
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> ExchangeSimulator:
        """Listen on (host, port) and serve on a background thread."""
        if self._server is not None:
            return self
        try:
            server = SimServer((self.host, self.requested_port), self)
        except OSError as exc:
            raise ExchangeSimulatorError(
                f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror}; "
                "pick another --port or use 0 for a free one."
            ) from exc
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"exchange-sim:{self.port}", daemon=True,
        )  # fmt: skip
        self._thread.start()
        log.info("exchange simulator listening on %s (%d symbols)", self.base_url, len(self.specs))
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> ExchangeSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise ExchangeSimulatorError("the simulator is not running; call start() first.")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what BINANCE_BASE_URL should be."""
        return f"http://{self.host}:{self.port}"

    # -- clock ---------------------------------------------------------------------------
    def now_ms(self) -> int:
        """The simulator's clock: the override if set, else wall-clock time."""
        override = self._now_override
        return override if override is not None else int(time.time() * 1000)

    def set_now(self, now_ms: int | None) -> None:
        """Freeze the clock at ``now_ms`` (None: follow wall-clock time again)."""
        self._now_override = now_ms

    def advance(self, ms: int) -> None:
        """Move a frozen clock forward by ``ms``."""
        self._now_override = self.now_ms() + ms

    # -- faults --------------------------------------------------------------------------
    def set_faults(
        self,
        faults: Faults | None = None,
        *,
        latency_ms: int | None = None,
        missing_symbols: Iterable[str] | None = None,
        rules: Iterable[FaultRule] | None = None,
    ) -> None:
        """Replace the faults: pass a :class:`Faults`, or keywords to change parts of it."""
        with self._lock:
            new = faults if faults is not None else Faults()
            if latency_ms is not None:
                new = replace(new, latency_ms=latency_ms)
            if missing_symbols is not None:
                new = replace(new, missing_symbols=frozenset(missing_symbols))
            if rules is not None:
                new = replace(new, rules=tuple(rules))
            self._faults = new
            self._rule_uses = {}

    def clear_faults(self) -> None:
        """Behave again."""
        self.set_faults(Faults())

    @property
    def faults(self) -> Faults:
        return self._faults

    # -- stats ---------------------------------------------------------------------------
    def request_count(self, endpoint: str | None = None, status: int | None = None) -> int:
        """Requests answered so far, optionally only for one endpoint and/or status."""
        with self._lock:
            return sum(
                n
                for (e, s), n in self._counts.items()
                if (endpoint is None or e == endpoint) and (status is None or s == status)
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._counts.clear()

    def used_weight(self) -> int:
        """Weight used in the current minute of the simulator's clock."""
        with self._lock:
            return self._weight_used if self._weight_window == self.now_ms() // 60_000 else 0

    # -- data (also handy in tests, without HTTP) ----------------------------------------
    def symbol_names(self) -> list[str]:
        return [s.symbol for s in self.specs]

    def klines(self, symbol: str, interval: str, limit: int = 500) -> list[list[Any]]:
        """What ``/api/v3/klines`` would answer now, parsed."""
        body = self.payloads.klines_body(
            self._by_symbol[symbol], interval, self.now_ms(), limit=limit
        )
        result: list[list[Any]] = json.loads(body)
        return result

    def ticker(self, symbol: str) -> dict[str, Any]:
        """What ``/api/v3/ticker/24hr?symbol=…`` would answer now."""
        return self.payloads.ticker(self._by_symbol[symbol], self.now_ms())

    # -- request handling (called on server threads) -------------------------------------
    def _visible(self) -> list[SymbolSpec]:
        missing = self._faults.missing_symbols
        return [s for s in self.specs if s.symbol not in missing]

    def _spec(self, params: dict[str, str]) -> SymbolSpec | None:
        spec = self._by_symbol.get(params.get("symbol", ""))
        if spec is None or spec.symbol in self._faults.missing_symbols:
            return None
        return spec

    def _take_rule(self, endpoint: str, params: dict[str, str]) -> FaultRule | None:
        with self._lock:
            for index, rule in enumerate(self._faults.rules):
                if not rule.matches(endpoint, params):
                    continue
                if rule.times is not None:
                    used = self._rule_uses.get(index, 0)
                    if used >= rule.times:
                        continue
                    self._rule_uses[index] = used + 1
                return rule
        return None

    def _charge(self, weight: int) -> tuple[bool, int, int]:
        """(admitted, used weight, seconds to the next window) after charging ``weight``."""
        now = self.now_ms()
        with self._lock:
            window = now // 60_000
            if window != self._weight_window:
                self._weight_window, self._weight_used = window, 0
            retry = max(1, math.ceil(((window + 1) * 60_000 - now) / 1000))
            if self._weight_used + weight > self.weight_limit:
                return False, self._weight_used, retry
            self._weight_used += weight
            return True, self._weight_used, retry

    def _count(self, endpoint: str, status: int) -> None:
        with self._lock:
            self._counts[(endpoint, status)] += 1

    def answer(self, method: str, path: str, query: str, body: bytes) -> Answer:
        """The response to one request (the HTTP handler only frames it)."""
        if path.startswith("/_sim/"):
            return self._control(method, path, body)
        endpoint = ENDPOINTS.get(path)
        if endpoint is None or method != "GET":
            return Answer(404, error_body(-1000, f"{method} {path} is not simulated."))
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        answer = self._data_answer(endpoint, params)
        self._count(endpoint, answer.status)
        return answer

    def _data_answer(self, endpoint: str, params: dict[str, str]) -> Answer:
        latency = self._faults.latency_ms
        if latency > 0:
            time.sleep(latency / 1000)
        weight = endpoint_weight(endpoint, params)
        admitted, used, retry = self._charge(weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used), "X-MBX-USED-WEIGHT": str(used)}
        if not admitted:
            headers["Retry-After"] = str(retry)
            msg = (
                f"Too many requests; current limit of IP(127.0.0.1) request weight is "
                f"{self.weight_limit} per 1 MINUTE. Please use WebSocket Streams for live "
                "updates to avoid polling the API."
            )
            return Answer(429, error_body(-1003, msg), headers)
        rule = self._take_rule(endpoint, params)
        if rule is not None and not rule.malformed:
            return self._fault_answer(rule, headers)
        answer = self._real_answer(endpoint, params, headers)
        if rule is not None and answer.status == 200:
            answer.body = answer.body[: max(1, len(answer.body) // 2)]
        return answer

    def _fault_answer(self, rule: FaultRule, headers: dict[str, str]) -> Answer:
        status = rule.status
        if status in (418, 429):
            retry_after = rule.retry_after if rule.retry_after is not None else 1
            headers["Retry-After"] = str(retry_after)
        if rule.body is not None:
            return Answer(status, rule.body, headers)
        if status == 418:
            until = self.now_ms() + int(headers["Retry-After"]) * 1000
            msg = (
                f"Way too many requests; IP(127.0.0.1) banned until {until}. Please use "
                "WebSocket Streams for live updates to avoid bans."
            )
            return Answer(418, error_body(-1003, msg), headers)
        if status == 429:
            msg = "Too many requests; please use WebSocket Streams for live updates."
            return Answer(429, error_body(-1003, msg), headers)
        if status >= 500:
            msg = "Internal error; unable to process your request. Please try again."
            return Answer(status, error_body(-1001, msg), headers)
        return Answer(status, error_body(-1121, "Invalid symbol."), headers)

    def _real_answer(
        self, endpoint: str, params: dict[str, str], headers: dict[str, str]
    ) -> Answer:
        now = self.now_ms()
        if endpoint == "ping":
            return Answer(200, "{}", headers)
        if endpoint == "time":
            return Answer(200, json.dumps({"serverTime": now}), headers)
        if endpoint == "exchangeInfo":
            info = self.payloads.exchange_info(self._visible(), now)
            return Answer(200, json.dumps(info, separators=(",", ":")), headers)
        if endpoint == "ticker/24hr":
            if "symbol" in params:
                spec = self._spec(params)
                if spec is None:
                    return Answer(400, error_body(-1121, "Invalid symbol."), headers)
                return Answer(
                    200, json.dumps(self.payloads.ticker(spec, now), separators=(",", ":")), headers
                )
            tickers = [self.payloads.ticker(s, now) for s in self._visible()]
            return Answer(200, json.dumps(tickers, separators=(",", ":")), headers)
        # klines
        spec = self._spec(params)
        if spec is None:
            return Answer(400, error_body(-1121, "Invalid symbol."), headers)
        interval = params.get("interval", "")
        if interval not in INTERVAL_MS:
            return Answer(400, error_body(-1120, "Invalid interval."), headers)
        try:
            limit = min(1000, max(1, int(params.get("limit", "500"))))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            return Answer(
                400, error_body(-1100, "Illegal characters found in a parameter."), headers
            )
        body = self.payloads.klines_body(
            spec, interval, now, limit=limit, start_time=start, end_time=end
        )
        return Answer(200, body, headers)

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        try:
            data: Any = json.loads(body) if body else {}
        except ValueError:
            return Answer(400, error_body(-1, "control body is not JSON"))
        if path == "/_sim/faults":
            if method == "DELETE":
                self.clear_faults()
            elif method == "POST":
                try:
                    self.set_faults(Faults.from_json(data))
                except (TypeError, ValueError) as exc:
                    return Answer(400, error_body(-1, f"bad faults: {exc}"))
            return Answer(200, json.dumps(self.faults.to_json()))
        if path == "/_sim/clock":
            if method == "POST":
                if "advance_ms" in data:
                    self.advance(int(data["advance_ms"]))
                elif "now_ms" in data:
                    self.set_now(None if data["now_ms"] is None else int(data["now_ms"]))
            return Answer(
                200, json.dumps({"now_ms": self.now_ms(), "frozen": self._now_override is not None})
            )
        if path == "/_sim/stats":
            with self._lock:
                counts = {f"{e} {s}": n for (e, s), n in sorted(self._counts.items())}
            return Answer(200, json.dumps({"requests": counts, "used_weight": self.used_weight()}))
        return Answer(404, error_body(-1000, f"no control endpoint {path}"))
