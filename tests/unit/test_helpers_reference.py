"""worker/sandbox/js/helpers.js against an independent pure-Python re-derivation of each helper.

Why: the browser's results must be reproduced bit for bit (docs/filter-contract.md), so every
helper is re-derived here from the browser's documented behaviour (summation order,
null/0/placeholder rules, parseFloat, Math.max NaN propagation) and compared with exact float
equality on synthetic and edge-case data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from py_mini_racer import MiniRacer

from traderctl.worker.local.synthetic_market import generate_snapshot
from traderctl.worker.sandbox.isolate import builtin_helpers_source

NaN = math.nan

# --------------------------------------------------------------------------- JS semantics

_FLOAT_PREFIX = re.compile(r"[+-]?(Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)")
_JS_WS = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def pf(value: Any) -> float:
    """JavaScript parseFloat."""
    if value is None:
        return NaN
    if isinstance(value, bool):
        return NaN
    if isinstance(value, int | float):
        return float(value) if value == value else NaN
    text = str(value).lstrip(_JS_WS)
    m = _FLOAT_PREFIX.match(text)
    if not m:
        return NaN
    token = m.group(0)
    if token.lstrip("+-") == "Infinity":
        return -math.inf if token.startswith("-") else math.inf
    return float(token)


def isnan(x: Any) -> bool:
    return isinstance(x, float) and x != x


def jmax(*xs: float) -> float:
    out = -math.inf
    for x in xs:
        if isnan(x):
            return NaN
        if x > out:
            out = x
    return out


def jmin(*xs: float) -> float:
    out = math.inf
    for x in xs:
        if isnan(x):
            return NaN
        if x < out:
            out = x
    return out


def col(klines: list[Any], i: int) -> list[float]:
    return [pf(k[i]) if isinstance(k, list) else NaN for k in klines]


def last_non_null(series: list[Any] | None) -> Any:
    if not series:
        return None
    for v in reversed(series):
        if v is not None:
            return v
    return None


def js_slice_last(arr: list[Any], count: float) -> list[Any]:
    """arr.slice(-count) with JS semantics (slice(-0) is the whole array)."""
    start = -count
    n = len(arr)
    if start == 0:
        return list(arr)
    start_i = int(max(n + start, 0)) if start < 0 else int(min(start, n))
    return arr[start_i:]


# --------------------------------------------------------------------------- reference helpers


def ma(k: list[Any] | None, period: int, index: int = 4) -> float | None:
    if not k or len(k) < period or period <= 0:
        return None
    total = 0.0
    for v in col(k, index)[len(k) - period :]:
        if isnan(v):
            return None
        total += v
    return total / period


def ma_series(k: list[Any] | None, period: int) -> list[Any]:
    if k is None:
        return []
    n = len(k)
    out: list[Any] = [None] * n
    if period <= 0 or n < period:
        return out
    closes = col(k, 4)
    for i in range(period - 1, n):
        total = 0.0
        bad = False
        for j in range(period):
            c = closes[i - j]
            if isnan(c):
                bad = True
                break
            total += c
        out[i] = None if bad else total / period
    return out


def sma(values: list[float] | None, period: int) -> float:
    if not values or len(values) < period or period <= 0:
        return 0
    total = 0.0
    for v in values[len(values) - period :]:
        total += v
    return total / period


def rsi(k: list[Any] | None, period: int = 14) -> list[Any] | None:
    if not k or period <= 0 or len(k) < period + 1:
        return None
    closes = col(k, 4)
    if any(isnan(c) for c in closes):
        return None
    n = len(k)
    out: list[Any] = [None] * n
    gain = loss = 0.0
    for i in range(1, period + 1):
        ch = closes[i] - closes[i - 1]
        if ch > 0:
            gain += ch
        else:
            loss += -ch
    ag, al = gain / period, loss / period

    def value(ag: float, al: float) -> float:
        if al == 0:
            return 100.0 if ag > 0 else 50.0
        return 100 - 100 / (1 + ag / al)

    out[period] = value(ag, al)
    for i in range(period + 1, n):
        ch = closes[i] - closes[i - 1]
        ag = (ag * (period - 1) + (ch if ch > 0 else 0)) / period
        al = (al * (period - 1) + (0 if ch > 0 else -ch)) / period
        out[i] = value(ag, al)
    return out


def generic_divergence(s1: Any, s2: Any, lookback: int = 30, sep: int = 5) -> str | None:
    if not s1 or not s2 or len(s1) != len(s2):
        return None
    if len(s1) < max(lookback, 2 * sep + 2):
        return None
    w1 = js_slice_last(s1, min(lookback, len(s1)))
    w2 = js_slice_last(s2, min(lookback, len(s2)))
    if len(w1) < sep + 2:
        return None
    valleys, peaks = [], []
    for i in range(1, len(w1) - 1):
        if w1[i - 1] is None or w1[i] is None or w1[i + 1] is None or w2[i] is None:
            continue
        if w1[i] < w1[i - 1] and w1[i] < w1[i + 1]:
            valleys.append(i)
        if w1[i] > w1[i - 1] and w1[i] > w1[i + 1]:
            peaks.append(i)
    for a in valleys:
        for b in valleys:
            if b < a and a - b >= sep and w1[a] < w1[b] and w2[a] > w2[b]:
                return "bullish_regular"
    for a in peaks:
        for b in peaks:
            if b < a and a - b >= sep and w1[a] > w1[b] and w2[a] < w2[b]:
                return "bearish_regular"
    return None


def stoch_rsi(
    k: Any, rp: int = 14, sp: int = 14, kp: int = 3, dp: int = 3
) -> list[dict[str, float]] | None:
    r = rsi(k, rp)
    if r is None:
        return None
    n = len(k)
    if n < sp + kp - 1 or sum(v is not None for v in r) < sp:
        return None
    raw: list[Any] = [None] * n
    seen = 0
    for i in range(n):
        if r[i] is None:
            continue
        seen += 1
        if seen < sp:
            continue
        window = r[i - sp + 1 : i + 1]
        hi, lo = jmax(*window), jmin(*window)
        raw[i] = 50.0 if hi == lo else ((r[i] - lo) / (hi - lo)) * 100
    kline: list[Any] = [None] * n
    for i in range(kp - 1, n):
        vals = [raw[i - j] for j in range(kp)]
        if any(v is None for v in vals):
            continue
        total = 0.0
        for v in vals:
            total += v
        kline[i] = total / kp
    out: list[dict[str, Any]] = []
    for i in range(n):
        vals = [kline[i - j] for j in range(dp)] if i >= dp - 1 else [None]
        if kline[i] is None or any(v is None for v in vals):
            out.append({"k": 0, "d": 0})
            continue
        total = 0.0
        for v in vals:
            total += v
        out.append({"k": kline[i], "d": total / dp})
    return out


def ema_of(values: list[Any], period: int) -> list[Any]:
    n = len(values)
    out: list[Any] = [None] * n
    if period <= 0 or n < period:
        return out

    def ok(v: Any) -> bool:
        return v is not None and not isnan(v)

    seed = next(
        (j for j in range(n - period + 1) if all(ok(v) for v in values[j : j + period])), None
    )
    if seed is None:
        return out
    alpha = 2 / (period + 1)
    total = 0.0
    for v in values[seed : seed + period]:
        total += v
    ema = total / period
    out[seed + period - 1] = ema
    for i in range(seed + period, n):
        if not ok(values[i]):
            break
        ema = values[i] * alpha + ema * (1 - alpha)
        out[i] = ema
    return out


def closes_or_null(k: list[Any]) -> list[Any]:
    return [None if isnan(c) else c for c in col(k, 4)]


def ema_series(k: Any, period: int) -> list[Any]:
    return [] if k is None else ema_of(closes_or_null(k), period)


def calc_ema(values: Any, period: int) -> Any:
    if not values or len(values) < period or period <= 0:
        return 0
    alpha = 2 / (period + 1)
    ema = values[0]
    for v in values[1:]:
        ema = v * alpha + ema * (1 - alpha)
    return ema


def macd_values(k: Any, s: int = 12, lg: int = 26, sig: int = 9) -> dict[str, list[Any]]:
    if k is None:
        return {"macdLine": [], "signalLine": [], "histogram": []}
    n = len(k)
    if n < max(lg, s, sig):
        return {"macdLine": [None] * n, "signalLine": [None] * n, "histogram": [None] * n}
    closes = closes_or_null(k)
    es, el = ema_of(closes, s), ema_of(closes, lg)
    line = [a - b if a is not None and b is not None else None for a, b in zip(es, el, strict=True)]
    signal = ema_of(line, sig)
    hist = [
        a - b if a is not None and b is not None else None
        for a, b in zip(line, signal, strict=True)
    ]
    return {"macdLine": line, "signalLine": signal, "histogram": hist}


def macd_classic(closes: Any, s: int = 12, lg: int = 26, sig: int = 9) -> dict[str, float]:
    if not closes or len(closes) < lg:
        return {"MACD": 0, "signal": 0, "histogram": 0}
    value = calc_ema(closes, s) - calc_ema(closes, lg)
    lst = [
        calc_ema(closes[: i + 1], s) - calc_ema(closes[: i + 1], lg)
        for i in range(lg - 1, len(closes))
    ]
    signal = calc_ema(lst, sig)
    return {"MACD": value, "signal": signal, "histogram": value - signal}


def adx(k: Any, period: int = 14) -> float:
    if not k or len(k) < 2 * period:
        return 0
    h, lo, c = col(k, 2), col(k, 3), col(k, 4)
    trs = [
        jmax(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(k))
    ]
    atr = sma(js_slice_last(trs, period), period)
    total = 0.0
    for v in c[len(k) - period :]:
        total += v
    avg = total / period
    try:
        pct = (atr / avg) * 100 * 10
    except ZeroDivisionError:
        pct = NaN if atr == 0 or isnan(atr) else math.copysign(math.inf, atr)
    return jmin(100, jmax(0, pct))


def stochastic(k: Any, kp: int = 14) -> dict[str, float]:
    if not k or len(k) < kp:
        return {"k": 0, "d": 0}
    recent = js_slice_last(k, kp)
    hh, ll = jmax(*col(recent, 2)), jmin(*col(recent, 3))
    close = pf(k[-1][4])
    value = ((close - ll) / (hh - ll)) * 100 if hh > ll else 50
    return {"k": value, "d": value * 0.9}


def extreme(k: Any, period: int, index: int, highest: bool) -> float | None:
    if not k or len(k) < period or period <= 0:
        return None
    vals = col(k, index)[len(k) - period :]
    if any(isnan(v) for v in vals):
        return None
    return max(vals) if highest else min(vals)


def engulfing(k: Any) -> str | None:
    if not k or len(k) < 3:
        return None
    cur, prev = k[-2], k[-3]
    co, cc, po, pc = pf(cur[1]), pf(cur[4]), pf(prev[1]), pf(prev[4])
    if any(isnan(v) for v in (co, cc, po, pc)):
        return None
    if pc < po and cc > co and co < pc and cc > po:
        return "bullish"
    if pc > po and cc < co and co > pc and cc < po:
        return "bearish"
    return None


def pvi(k: Any, initial: float = 1000) -> list[Any]:
    if not k:
        return []
    n = len(k)
    out: list[Any] = [None] * n
    out[0] = initial
    c, v = col(k, 4), col(k, 5)
    for i in range(1, n):
        prev = out[i - 1]
        if prev is None or any(isnan(x) for x in (c[i], c[i - 1], v[i], v[i - 1])):
            break
        if v[i] > v[i - 1]:
            if c[i - 1] == 0:
                break
            out[i] = prev + ((c[i] - c[i - 1]) / c[i - 1]) * prev
        else:
            out[i] = prev
    return out


def hvn(
    k: Any,
    *,
    bins: int = 30,
    threshold: float = 70,
    lookback: int = 250,
    min_strength: float = 50,
    tol: float = 0.05,
) -> list[dict[str, Any]]:
    if not k:
        return []
    recent = js_slice_last(k, lookback)
    lows = [v for v in col(recent, 3) if not isnan(v)]
    highs = [v for v in col(recent, 2) if not isnan(v)]
    if not lows or not highs:
        return []
    lo_all, hi_all = min(lows), max(highs)
    if lo_all >= hi_all:
        return []
    size = (hi_all - lo_all) / bins
    vol = [0.0] * bins
    buy = [0.0] * bins
    for row in recent:
        o, h, lo, c, v = (pf(row[i]) for i in (1, 2, 3, 4, 5))
        if any(isnan(x) for x in (o, h, lo, c, v)):
            continue
        tb = pf(row[9])
        tb = 0.0 if isnan(tb) else tb
        s = math.floor((min(o, c, lo) - lo_all) / size)
        e = math.floor((max(o, c, h) - lo_all) / size)
        spanned = max(1, e - s + 1)
        for b in range(max(0, s), min(bins - 1, e) + 1):
            vol[b] += v / spanned
            buy[b] += tb / spanned
    ordered = sorted(vol)
    idx = math.floor((threshold / 100) * bins)
    thr = ordered[idx] if 0 <= idx < len(ordered) else 0
    max_vol = max(vol)
    nodes: list[dict[str, Any]] = []
    for i in range(bins):
        v = vol[i]
        if not (v >= thr and v > 0):
            continue
        before = vol[i - 1] if i > 0 else 0
        after = vol[i + 1] if i < bins - 1 else 0
        if not (v > before * (1 + tol) and v > after * (1 + tol)):
            continue
        bmin = lo_all + i * size
        bmax = bmin + size
        strength = (v / max_vol) * 100 if max_vol > 0 else 0
        if strength >= min_strength:
            nodes.append(
                {
                    "price": (bmin + bmax) / 2,
                    "volume": v,
                    "buyVolume": buy[i],
                    "sellVolume": v - buy[i],
                    "strength": strength,
                    "priceRange": [bmin, bmax],
                }
            )
    nodes.sort(key=lambda node: -node["strength"])  # Python's sort is stable too
    return nodes


def bollinger(k: Any, period: int = 20, sd_mult: float = 2) -> dict[str, list[Any]]:
    n = len(k) if k else 0
    if not k or n < period or period <= 0:
        return {"upper": [None] * n, "middle": [None] * n, "lower": [None] * n}
    mid = ma_series(k, period)
    closes = col(k, 4)
    upper: list[Any] = [None] * n
    lower: list[Any] = [None] * n
    for i in range(n):
        if mid[i] is None:
            continue
        var = 0.0
        for j in range(period):
            d = closes[i - j] - mid[i]
            var += d * d
        sd = math.sqrt(var / period)
        upper[i] = mid[i] + sd_mult * sd
        lower[i] = mid[i] - sd_mult * sd
    return {"upper": upper, "middle": mid, "lower": lower}


def vwap(k: Any) -> float:
    if not k:
        return 0
    pv = vol = 0.0
    for row in k:
        v = pf(row[5])
        pv += ((pf(row[2]) + pf(row[3]) + pf(row[4])) / 3) * v
        vol += v
    return pv / vol if vol > 0 else 0


def anchor(n: int, a: Any) -> int:
    return n - a if a and a < n else 0


def vwap_series(k: Any, a: Any = None) -> list[Any]:
    if not k:
        return []
    n = len(k)
    out: list[Any] = [None] * n
    pv = vol = 0.0
    for i in range(anchor(n, a), n):
        h, lo, c, v = (pf(k[i][j]) for j in (2, 3, 4, 5))
        if any(isnan(x) for x in (h, lo, c, v)):
            continue
        pv += ((h + lo + c) / 3) * v
        vol += v
        out[i] = pv / vol if vol > 0 else None
    return out


def vwap_bands(k: Any, a: Any = None, mult: float = 1) -> dict[str, list[Any]]:
    n = len(k) if k else 0
    center = vwap_series(k, a) if n else []
    up: list[Any] = [None] * n
    dn: list[Any] = [None] * n
    start = anchor(n, a)
    for i in range(start, n):
        if center[i] is None:
            continue
        total, count = 0.0, 0
        for j in range(start, i + 1):
            h, lo, c = (pf(k[j][x]) for x in (2, 3, 4))
            if any(isnan(x) for x in (h, lo, c)):
                continue
            d = (h + lo + c) / 3 - center[i]
            total += d * d
            count += 1
        sd = math.sqrt(total / count)
        up[i] = center[i] + sd * mult
        dn[i] = center[i] - sd * mult
    return {"vwap": center if n else [], "upperBand": up, "lowerBand": dn}


# --------------------------------------------------------------------------- plumbing

_ENCODE = (
    "function __enc(v) { return JSON.stringify(v, function (k, x) {"
    " if (typeof x === 'number' && !isFinite(x)) return 'JS:' + String(x);"
    " if (x === undefined) return 'JS:undefined'; return x; }); }"
)


@pytest.fixture(scope="module")
def js() -> Iterator[Any]:
    mr = MiniRacer()
    mr.eval(builtin_helpers_source())
    mr.eval(_ENCODE)

    def call(expr: str, **data: Any) -> Any:
        prelude = "".join(f"var {name} = {json.dumps(value)};" for name, value in data.items())
        text = mr.eval(f"(function(){{ {prelude} return __enc({expr}); }})()")
        return _decode(json.loads(text)) if isinstance(text, str) else "JS:undefined"

    yield call
    mr.close()


def _decode(v: Any) -> Any:
    if isinstance(v, str) and v.startswith("JS:"):
        return {"JS:NaN": NaN, "JS:Infinity": math.inf, "JS:-Infinity": -math.inf}.get(v, v)
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, dict):
        return {k: _decode(x) for k, x in v.items()}
    return v


def same(a: Any, b: Any) -> bool:
    """Exact equality with NaN == NaN, recursively; key order of objects included."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


SNAP = generate_snapshot(symbols=4, klines=250, seed=11)
SERIES = [SNAP.historical[s][tf] for s in SNAP.symbols[:2] for tf in ("1m", "1h", "1d")]


def flat(n: int, price: str = "100.0", volume: str = "10") -> list[list[Any]]:
    return [[i, price, price, price, price, volume, i + 1, "0", 1, "5", "0", "0"] for i in range(n)]


def with_row(klines: list[list[Any]], index: int, col_: int, value: Any) -> list[list[Any]]:
    out = [list(r) for r in klines]
    out[index][col_] = value
    return out


EDGE = {
    "flat": flat(60),
    "zero_volume": flat(60, volume="0"),
    "short": SERIES[0][:10],
    "nan_close": with_row(SERIES[1][:80], 40, 4, "abc"),
    "nan_last": with_row(SERIES[1][:80], 79, 4, ""),
    "nan_volume": with_row(SERIES[1][:80], 50, 5, "n/a"),
    "dirty_strings": with_row(with_row(SERIES[2][:80], 10, 4, "  12abc"), 11, 2, "1e3"),
    "numbers": [
        [r[0], *[float(x) for x in r[1:6]], r[6], 0.0, r[8], float(r[9]), 0.0, "0"]
        for r in SERIES[0][:60]
    ],
    "zero_close": with_row(SERIES[0][:60], 20, 4, "0"),
}
ALL = {f"series{i}": s for i, s in enumerate(SERIES)} | EDGE


def cases() -> list[tuple[str, list[Any]]]:
    return list(ALL.items())


# --------------------------------------------------------------------------- tests


def test_parse_float_mirror(js):
    samples = [
        "12abc",
        "1e3",
        "",
        "  42.5x",
        "-.5",
        "+3e-2z",
        "Infinity",
        "-Infinityx",
        "abc",
        "1.2.3",
        "0x10",
        "\t\n7",
    ]
    got = js("S.map(parseFloat)", S=samples)
    assert same(got, [pf(s) for s in samples])


@pytest.mark.parametrize(("name", "k"), cases())
def test_moving_averages(js, name, k):
    for p in (1, 5, 20, 250):
        assert same(js("helpers.calculateMA(K, P)", K=k, P=p), ma(k, p))
        assert same(js("helpers.calculateMASeries(K, P)", K=k, P=p), ma_series(k, p))
        assert same(js("helpers.calculateAvgVolume(K, P)", K=k, P=p), ma(k, p, 5))
    closes = col(k, 4)
    for p in (3, 10, 1000):
        assert same(
            js("helpers.calculateSMA(V, P)", V=[c for c in closes if not isnan(c)], P=p),
            sma([c for c in closes if not isnan(c)], p),
        )


@pytest.mark.parametrize(("name", "k"), cases())
def test_rsi_family(js, name, k):
    for p in (14, 7):
        assert same(js("helpers.calculateRSI(K, P)", K=k, P=p), rsi(k, p))
        assert same(js("helpers.getLatestRSI(K, P)", K=k, P=p), last_non_null(rsi(k, p)))
    assert same(js("helpers.calculateRSI(K)", K=k), rsi(k))
    assert same(js("helpers.calculateStochRSI(K)", K=k), stoch_rsi(k))
    assert same(js("helpers.calculateStochRSI(K, 7, 10, 4, 2)", K=k), stoch_rsi(k, 7, 10, 4, 2))
    expected = stoch_rsi(k)
    latest = (
        None
        if expected is None
        else next((e for e in reversed(expected) if e["k"] != 0 or e["d"] != 0), None)
    )
    assert same(js("helpers.getLatestStochRSI(K)", K=k), latest)
    closes = closes_or_null(k)
    r = rsi(k)
    for lb, sep in ((30, 5), (40, 3), (0, 5)):
        n = len(k)
        want = None
        if n >= max(15, lb, 2 * sep + 2) and r is not None:
            want = generic_divergence(closes, r, lb, sep)
        assert same(js("helpers.detectRSIDivergence(K, 14, L, S)", K=k, L=lb, S=sep), want)


@pytest.mark.parametrize(("name", "k"), cases())
def test_ema_and_macd(js, name, k):
    for p in (9, 21, 50):
        assert same(js("helpers.calculateEMASeries(K, P)", K=k, P=p), ema_series(k, p))
        assert same(js("helpers.getLatestEMA(K, P)", K=k, P=p), last_non_null(ema_series(k, p)))
    closes = [c for c in col(k, 4) if not isnan(c)]
    for p in (5, 12):
        assert same(js("helpers.calculateEMA(V, P)", V=closes, P=p), calc_ema(closes, p))
    assert same(js("helpers.calculateMACDValues(K)", K=k), macd_values(k))
    assert same(js("helpers.calculateMACDValues(K, 5, 13, 4)", K=k), macd_values(k, 5, 13, 4))
    mv = macd_values(k)
    assert same(
        js("helpers.getLatestMACD(K)", K=k),
        {
            "macd": last_non_null(mv["macdLine"]),
            "signal": last_non_null(mv["signalLine"]),
            "histogram": last_non_null(mv["histogram"]),
        },
    )
    assert same(js("helpers.calculateMACD(V)", V=closes), macd_classic(closes))
    assert same(
        js("helpers.calculateMACD(V, 5, 13, 30)", V=closes), macd_classic(closes, 5, 13, 30)
    )


@pytest.mark.parametrize(("name", "k"), cases())
def test_oscillators_ranges_patterns(js, name, k):
    for p in (14, 5):
        assert same(js("helpers.calculateADX(K, P)", K=k, P=p), adx(k, p))
        assert same(js("helpers.getHighestHigh(K, P)", K=k, P=p), extreme(k, p, 2, True))
        assert same(js("helpers.getLowestLow(K, P)", K=k, P=p), extreme(k, p, 3, False))
    assert same(js("helpers.calculateStochastic(K)", K=k), stochastic(k))
    assert same(js("helpers.calculateStochastic(K, 0)", K=k), stochastic(k, 0))  # slice(-0)
    assert same(js("helpers.detectEngulfingPattern(K)", K=k), engulfing(k))
    assert same(js("helpers.calculatePVISeries(K)", K=k), pvi(k))
    assert same(js("helpers.getLatestPVI(K, 50)", K=k), last_non_null(pvi(k, 50)))


@pytest.mark.parametrize(("name", "k"), cases())
def test_bollinger_and_vwap(js, name, k):
    assert same(js("helpers.calculateBollingerBands(K)", K=k), bollinger(k))
    assert same(js("helpers.calculateBollingerBands(K, 10, 1.5)", K=k), bollinger(k, 10, 1.5))
    bb = bollinger(k)
    idx = next((i for i in range(len(k) - 1, -1, -1) if bb["upper"][i] is not None), None)
    want = {x: None if idx is None else bb[x][idx] for x in ("upper", "middle", "lower")}
    assert same(js("helpers.getLatestBollingerBands(K)", K=k), want)
    assert same(js("helpers.calculateVWAP(K)", K=k), vwap(k))
    for a in (None, 0, 20, 10_000, -3):
        assert same(js("helpers.calculateVWAPSeries(K, A)", K=k, A=a), vwap_series(k, a))
        assert same(js("helpers.getLatestVWAP(K, A)", K=k, A=a), last_non_null(vwap_series(k, a)))
        assert same(js("helpers.calculateVWAPBands(K, A, 2)", K=k, A=a), vwap_bands(k, a, 2))
        bands = vwap_bands(k, a, 2)
        i = next((i for i in range(len(k) - 1, -1, -1) if bands["vwap"][i] is not None), None)
        want_b = {x: None if i is None else bands[x][i] for x in ("vwap", "upperBand", "lowerBand")}
        assert same(js("helpers.getLatestVWAPBands(K, A, 2)", K=k, A=a), want_b)


@pytest.mark.parametrize(("name", "k"), cases())
def test_high_volume_nodes(js, name, k):
    assert same(js("helpers.calculateHighVolumeNodes(K)", K=k), hvn(k))
    assert same(
        js("helpers.calculateHighVolumeNodes(K, {lookback: Math.min(K.length, 100)})", K=k),
        hvn(k, lookback=min(len(k), 100)),
    )
    assert same(
        js(
            "helpers.calculateHighVolumeNodes(K, {bins: 20, threshold: 50, minStrength: 10, peakTolerance: 0})",
            K=k,
        ),
        hvn(k, bins=20, threshold=50, min_strength=10, tol=0),
    )
    assert same(
        js("helpers.calculateHighVolumeNodes(K, {lookback: 0, threshold: 100})", K=k),
        hvn(k, lookback=0, threshold=100),
    )


def test_hvn_queries(js):
    k = SERIES[1]
    nodes = hvn(k, min_strength=0, threshold=0)
    assert len(nodes) >= 2
    price = nodes[0]["price"]
    for tol in (0.5, 0.0001):
        want = any(abs(price * 1.001 - n["price"]) <= price * 1.001 * (tol / 100) for n in nodes)
        assert js("helpers.isNearHVN(P, N, T)", P=price * 1.001, N=nodes, T=tol) is want
    assert js("helpers.isNearHVN(String(P), N)", P=price, N=nodes) is True  # numeric string
    assert js("helpers.isNearHVN('abc', N)", N=nodes) is False
    assert js("helpers.isNearHVN(P, [])", P=price) is False
    for direction in ("above", "below", "both", "sideways"):
        best, dist = None, math.inf
        for n in nodes:
            d = n["price"] - price * 1.0003
            if (direction == "above" and d < 0) or (direction == "below" and d > 0):
                continue
            if abs(d) < dist:
                best, dist = n, abs(d)
        assert same(
            js("helpers.getClosestHVN(P, N, D)", P=price * 1.0003, N=nodes, D=direction), best
        )
    assert same(
        js("helpers.getClosestHVN(P, N, 'above')", P=price, N=nodes), nodes[0]
    )  # exact passes
    assert js("helpers.getClosestHVN(NaN, N)", N=nodes) is None
    lo, hi = nodes[-1]["price"], nodes[0]["price"]
    lo, hi = min(lo, hi), max(lo, hi)
    count = len([n for n in nodes if lo <= n["price"] <= hi])
    assert js("helpers.countHVNInRange(L, H, N)", L=lo, H=hi, N=nodes) == count
    assert js("helpers.countHVNInRange(String(L), String(H), N)", L=lo, H=hi, N=nodes) == count
    assert js("helpers.countHVNInRange('x', H, N)", H=hi, N=nodes) == 0
    assert js("helpers.countHVNInRange(L, H, null)", L=lo, H=hi) == 0


def test_hvn_cache_returns_stored_object_and_clears(js):
    k, other = SERIES[1], SERIES[2]
    assert (
        js(
            "(function(){ var a = helpers.calculateHighVolumeNodes(K, {cacheKey: 'x'});"
            " var b = helpers.calculateHighVolumeNodes(O, {cacheKey: 'x', bins: 5});"
            " helpers.clearHVNCache('x');"
            " var c = helpers.calculateHighVolumeNodes(O, {cacheKey: 'x', bins: 5});"
            " helpers.clearHVNCache();"
            " return a === b && a !== c; })()",
            K=k,
            O=other,
        )
        is True
    )
    # A flat price returns [] and is not cached: a later call with real data computes.
    assert (
        js(
            "(function(){ helpers.clearHVNCache(); helpers.calculateHighVolumeNodes(F, {cacheKey: 'f'});"
            " var r = helpers.calculateHighVolumeNodes(K, {cacheKey: 'f'}); helpers.clearHVNCache(); return r.length > 0 || r; })()",
            F=flat(40),
            K=k,
        )
        is True
        or hvn(k) == []
    )


def test_generic_divergence_rules(js):
    # valleys at 5 and 12 (sep 7): lower low in s1, higher low in s2 -> bullish
    s1 = [10, 9, 8, 7, 6, 5, 6, 7, 8, 7, 6, 5, 4, 5, 6, 7, 8, 9, 10, 11]
    s2 = [50, 49, 48, 47, 46, 30, 46, 47, 48, 47, 46, 45, 35, 45, 46, 47, 48, 49, 50, 51]
    assert (
        js("helpers.detectGenericDivergence(A, B, 20, 5)", A=s1, B=s2)
        == generic_divergence(s1, s2, 20, 5)
        == "bullish_regular"
    )
    assert js("helpers.detectGenericDivergence(A, B, 20, 8)", A=s1, B=s2) is None
    neg = [-x for x in s1]
    negb = [-x for x in s2]
    assert js("helpers.detectGenericDivergence(A, B, 20, 5)", A=neg, B=negb) == "bearish_regular"
    assert js("helpers.detectGenericDivergence(A, B.slice(1), 20, 5)", A=s1, B=s2) is None
    assert js("helpers.detectGenericDivergence(A, null)", A=s1) is None
    with_null: list[int | None] = list(s2)
    with_null[12] = None
    assert js(
        "helpers.detectGenericDivergence(A, B, 20, 5)", A=s1, B=with_null
    ) == generic_divergence(s1, with_null, 20, 5)
    assert js("helpers.detectGenericDivergence(A, B, 0, 5)", A=s1, B=s2) == generic_divergence(
        s1, s2, 0, 5
    )


def test_falsy_and_wrong_inputs_never_throw(js):
    expected: dict[str, Any] = {
        "calculateMA(null, 5)": None,
        "calculateMASeries(null, 5)": [],
        "calculateSMA(null, 5)": 0,
        "calculateAvgVolume(undefined, 5)": None,
        "calculateRSI(null)": None,
        "getLatestRSI(null)": None,
        "detectRSIDivergence(null)": None,
        "calculateStochRSI(null)": None,
        "getLatestStochRSI(null)": None,
        "calculateEMASeries(null, 9)": [],
        "getLatestEMA(null, 9)": None,
        "calculateEMA(null, 9)": 0,
        "calculateMACDValues(null)": {"macdLine": [], "signalLine": [], "histogram": []},
        "getLatestMACD(null)": {"macd": None, "signal": None, "histogram": None},
        "calculateMACD(null)": {"MACD": 0, "signal": 0, "histogram": 0},
        "calculateADX(null)": 0,
        "calculateStochastic(null)": {"k": 0, "d": 0},
        "getHighestHigh(null, 5)": None,
        "getLowestLow(null, 5)": None,
        "detectEngulfingPattern(null)": None,
        "calculatePVISeries([])": [],
        "getLatestPVI(null)": None,
        "calculateHighVolumeNodes(null)": [],
        "calculateHighVolumeNodes([])": [],
        "isNearHVN(1, null)": False,
        "getClosestHVN(1, [])": None,
        "countHVNInRange(1, 2, [])": 0,
        "calculateBollingerBands(null)": {"upper": [], "middle": [], "lower": []},
        "getLatestBollingerBands(null)": {"upper": None, "middle": None, "lower": None},
        "calculateVWAP([])": 0,
        "calculateVWAPSeries(null)": [],
        "getLatestVWAP([])": None,
        "calculateVWAPBands([])": {"vwap": [], "upperBand": [], "lowerBand": []},
        "getLatestVWAPBands([])": {"vwap": None, "upperBand": None, "lowerBand": None},
        "clearHVNCache()": "JS:undefined",
    }
    for expr, want in expected.items():
        assert same(js("helpers." + expr), want), expr
    closes = [float(r[4]) for r in SERIES[0]]
    # Numbers where klines are expected: number[4] is undefined -> NaN -> null/0 result.
    assert js("helpers.calculateRSI(C)", C=closes) is None
    assert js("helpers.calculateMA(C, 5)", C=closes) is None
    assert same(js("helpers.calculateVWAP(C)", C=closes), 0)


def test_documented_quirks(js):
    k = SERIES[0]
    flat_k = flat(60)
    assert js("helpers.getLatestRSI(F)", F=flat_k) == 50  # flat price
    assert same(js("helpers.getLatestStochRSI(F)", F=flat_k), {"k": 50, "d": 50})
    assert js("helpers.calculateADX(F)", F=flat_k) == 0
    assert same(
        js("helpers.getLatestBollingerBands(F)", F=flat_k),
        {"upper": 100, "middle": 100, "lower": 100},
    )
    assert js("helpers.calculateHighVolumeNodes(F)", F=flat_k) == []
    # StochRSI: first full element at rsiPeriod+stochPeriod+kPeriod+dPeriod-3 = 31.
    out = js("helpers.calculateStochRSI(K)", K=k)
    assert all(e == {"k": 0, "d": 0} for e in out[:31]) and out[31] != {"k": 0, "d": 0}
    # MACD signal starts at 33; getLatestMACD fields are found independently.
    mv = js("helpers.calculateMACDValues(K)", K=k)
    assert mv["signalLine"][32] is None and mv["signalLine"][33] is not None
    partial = js("helpers.getLatestMACD(K.slice(0, 30))", K=k)
    assert (
        partial["macd"] is not None and partial["signal"] is None and partial["histogram"] is None
    )
    # Stochastic d = k * 0.9; dPeriod/smooth ignored.
    st = js("helpers.calculateStochastic(K, 14, 99, 99)", K=k)
    assert st["d"] == st["k"] * 0.9
    # Too few klines -> null.
    assert js("helpers.calculateRSI(K.slice(0, 14))", K=k) is None
    assert js("helpers.calculateRSI(K.slice(0, 15))", K=k) is not None
    # Each StochRSI element is a separate object.
    assert (
        js("(function(){ var s = helpers.calculateStochRSI(K); return s[0] !== s[1]; })()", K=k)
        is True
    )
    # Key order of a VolumeNode.
    nodes = js("helpers.calculateHighVolumeNodes(K, {minStrength: 0, threshold: 0})", K=k)
    assert list(nodes[0]) == [
        "price",
        "volume",
        "buyVolume",
        "sellVolume",
        "strength",
        "priceRange",
    ]


def test_exports_exactly_35_functions(js):
    names = js("Object.keys(helpers).sort()")
    assert len(names) == 35
    assert (
        js("Object.keys(helpers).every(function (n) { return typeof helpers[n] === 'function'; })")
        is True
    )
    assert "emaOf" not in names
