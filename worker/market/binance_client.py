"""An asyncio httpx client for Binance's public market-data endpoints, within the limits.

* Weight: every request first reserves its weight in a
  :class:`~traderctl.worker.market.limits.WeightBudget`, and the budget follows
  ``X-MBX-USED-WEIGHT-1M``, so we stay under our share of the exchange's 6000/min even
  with other clients on the same IP.
* 429: pause everything for the ``Retry-After`` seconds, then retry (bounded tries).
* 418 (IP banned): stop. :class:`~traderctl.worker.errors.ExchangeBanned` is raised at
  once and, until the ``Retry-After`` has passed, for every further call without sending it.
* Timeouts, connection errors, 5xx and unparsable JSON: retried with jittered
  exponential backoff (:class:`~traderctl.worker.market.limits.Backoff`), then
  :class:`~traderctl.worker.errors.ExchangeUnavailable` / ``ExchangeMalformedResponse``.
* Other 4xx (invalid symbol, bad parameter):
  :class:`~traderctl.worker.errors.ExchangeRequestRejected` with Binance's code and
  message, not retried.
* Concurrency is bounded by a semaphore and httpx's connection pool of the same size.

Answers are checked against the documented shapes (:mod:`traderctl.worker.market.shapes`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from traderctl.worker.errors import (
    ExchangeBanned,
    ExchangeMalformedResponse,
    ExchangeRateLimited,
    ExchangeRequestRejected,
    ExchangeUnavailable,
    MarketDataError,
)
from traderctl.worker.market.limits import (
    EXCHANGE_INFO_WEIGHT,
    Backoff,
    WeightBudget,
    klines_weight,
    ticker_24hr_weight,
)
from traderctl.worker.market.metrics import MarketMetrics
from traderctl.worker.market.shapes import (
    ListedSymbol,
    check_exchange_info,
    check_klines,
    check_tickers,
)

__all__ = ["BinanceClient"]

log = logging.getLogger(__name__)


def _retry_after(response: httpx.Response, default: float) -> float:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default


def _binance_error(response: httpx.Response) -> str:
    """Binance's ``code msg`` from an error body, or the start of the body."""
    try:
        data = response.json()
        return f"code {data['code']}: {data['msg']}"
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or "(empty body)"


@dataclass(frozen=True)
class _Retry:
    """A try that failed in a way worth retrying (5xx, 429, unparsable body)."""

    error: MarketDataError


class BinanceClient:
    """``exchange_info()``, ``tickers()`` and ``klines()`` against ``base_url``.

    Use it as ``async with BinanceClient(url, budget=WeightBudget(3000)) as client:``
    (or call :meth:`aclose`). ``clock``/``sleep``/``rng`` are injectable for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        budget: WeightBudget,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        concurrency: int = 16,
        max_retry_after_s: float = 120.0,
        metrics: MarketMetrics | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.backoff = backoff or Backoff()
        self.max_retry_after_s = max_retry_after_s
        self.metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": "traderctl-market-data"},
        )
        self.banned_until = 0.0
        #: Answers by (endpoint, status label); status labels are codes, 'timeout', 'error'.
        self.counts: Counter[tuple[str, str]] = Counter()
        self.last_used_weight: int | None = None

    async def __aenter__(self) -> BinanceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- state ---------------------------------------------------------------------------
    def banned_for(self) -> float:
        """Seconds left of a 418 ban (0 when not banned)."""
        return max(0.0, self.banned_until - self._clock())

    def count(self, status: str | None = None, endpoint: str | None = None) -> int:
        """Answers so far, optionally of one status label and/or endpoint."""
        return sum(
            n
            for (e, s), n in self.counts.items()
            if (status is None or s == status) and (endpoint is None or e == endpoint)
        )

    def _check_ban(self, what: str) -> None:
        left = self.banned_for()
        if left > 0:
            raise ExchangeBanned(
                f"{what} not sent: the exchange banned this IP (HTTP 418) for another "
                f"{left:.0f}s. Requests resume after the ban; lower "
                "TRADERCTL_MARKET_WEIGHT_BUDGET and check for other clients on this IP."
            )

    def _record(self, endpoint: str, status: str) -> None:
        self.counts[(endpoint, status)] += 1
        if self.metrics is not None:
            self.metrics.requests.labels(endpoint=endpoint, status=status).inc()

    # -- the request loop ----------------------------------------------------------------
    async def _get_json(self, endpoint: str, params: dict[str, str | int], weight: int) -> Any:
        """The parsed JSON of ``GET /api/v3/{endpoint}``, within the limits, with retries.

        Each try either returns, raises at once (418, other 4xx, budget timeout, a 429
        asking for a longer pause than ``max_retry_after_s``) or yields a retryable error;
        after the last try that error is raised, saying how many tries were made.
        """
        path = f"/api/v3/{endpoint}"
        what = f"GET {self.base_url}{path}" + (
            "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        )
        error: MarketDataError | None = None
        for attempt in range(self.backoff.attempts):
            if attempt:
                await self._sleep(self.backoff.delay(attempt - 1, self._rng))
            sent = await self._send(endpoint, path, params, weight, what)
            if isinstance(sent, MarketDataError):
                error = sent
                continue
            self._observe_weight(sent)
            answer = self._interpret(sent, what)
            if not isinstance(answer, _Retry):
                return answer
            error = answer.error
        assert error is not None
        raise type(error)(
            f"{error} Gave up after {self.backoff.attempts} tries; the last good data is kept."
        )

    async def _send(
        self, endpoint: str, path: str, params: dict[str, str | int], weight: int, what: str
    ) -> httpx.Response | MarketDataError:
        """One request once the budget admits it; transport failures are returned."""
        self._check_ban(what)
        try:
            await self.budget.acquire(weight, max_wait=self.max_retry_after_s)
        except TimeoutError as exc:
            raise ExchangeRateLimited(
                f"{what} not sent: {exc}. Lower TRADERCTL_MARKET_UNIVERSE_SIZE or raise "
                "TRADERCTL_MARKET_WEIGHT_BUDGET (Binance allows 6000/min)."
            ) from exc
        async with self._semaphore:
            self._check_ban(what)
            try:
                response = await self._http.get(path, params=params)
            except httpx.TimeoutException as exc:
                self._record(endpoint, "timeout")
                return ExchangeUnavailable(f"{what} timed out ({type(exc).__name__}).")
            except httpx.TransportError as exc:
                self._record(endpoint, "error")
                return ExchangeUnavailable(f"{what} failed: {type(exc).__name__}: {exc}.")
        self._record(endpoint, str(response.status_code))
        return response

    def _observe_weight(self, response: httpx.Response) -> None:
        used = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if used is not None and used.isdigit():
            self.last_used_weight = int(used)
            self.budget.observe(int(used))
            if self.metrics is not None:
                self.metrics.used_weight.set(int(used))

    def _interpret(self, response: httpx.Response, what: str) -> Any:
        """The parsed body of a 200, a :class:`_Retry`, or raise for what must not retry."""
        status = response.status_code
        if status == 200:
            try:
                return json.loads(response.content.decode())
            except ValueError as exc:
                return _Retry(
                    ExchangeMalformedResponse(
                        f"{what}: the answer is not valid JSON ({exc}); the last good data is "
                        "kept. Check that BINANCE_BASE_URL points at a Binance Spot REST endpoint."
                    )
                )
        if status == 418:
            seconds = _retry_after(response, 120.0)
            self.banned_until = max(self.banned_until, self._clock() + seconds)
            if self.metrics is not None:
                self.metrics.banned.set(1)
            raise ExchangeBanned(
                f"{what} answered 418 ({_binance_error(response)}): this IP is banned for "
                f"{seconds:.0f}s. No request is sent until then; lower "
                "TRADERCTL_MARKET_WEIGHT_BUDGET and check for other clients on this IP."
            )
        if status == 429:
            seconds = _retry_after(response, 60.0)
            self.budget.pause(seconds)
            error = ExchangeRateLimited(
                f"{what} answered 429 ({_binance_error(response)}); paused {seconds:.0f}s as "
                "Retry-After asked. Lower TRADERCTL_MARKET_WEIGHT_BUDGET if this repeats."
            )
            if seconds > self.max_retry_after_s:
                raise error
            log.warning("%s", error)
            return _Retry(error)
        if status >= 500:
            return _Retry(
                ExchangeUnavailable(f"{what} answered {status} ({_binance_error(response)}).")
            )
        raise ExchangeRequestRejected(
            f"{what} was rejected with {status} ({_binance_error(response)}); not retried."
        )

    # -- endpoints -----------------------------------------------------------------------
    async def exchange_info(self) -> list[ListedSymbol]:
        """Every listed symbol (``GET /api/v3/exchangeInfo``, weight 20)."""
        data = await self._get_json("exchangeInfo", {}, EXCHANGE_INFO_WEIGHT)
        return check_exchange_info(data, what=f"GET {self.base_url}/api/v3/exchangeInfo")

    async def tickers(self) -> list[dict[str, Any]]:
        """24h tickers of every symbol in one call (``GET /api/v3/ticker/24hr``, weight 80)."""
        data = await self._get_json("ticker/24hr", {}, ticker_24hr_weight())
        return check_tickers(data, what=f"GET {self.base_url}/api/v3/ticker/24hr")

    async def klines(self, symbol: str, interval: str, limit: int = 250) -> list[list[Any]]:
        """The latest ``limit`` klines of ``symbol`` (the last one is live)."""
        params: dict[str, str | int] = {"symbol": symbol, "interval": interval, "limit": limit}
        data = await self._get_json("klines", params, klines_weight(limit))
        return check_klines(
            data,
            what=f"GET {self.base_url}/api/v3/klines?symbol={symbol}&interval={interval}",
            interval=interval,
        )
