/*
 * traderctl built-in `helpers`: the 35 functions of the filter contract (docs/filter-contract.md).
 *
 * Why this file exists: users' browser filters were tuned against the browser's helper
 * library, so every function here follows the spec to the bit (formula forms, summation
 * order, null/0/placeholder rules, JS parseFloat and truthiness quirks).
 *
 * Contract with the rest of traderctl:
 * - This is a plain script that defines one global, `helpers` (the same shape an operator's
 *   esbuild bundle has: `--format=iife --global-name=helpers`).
 * - It is pure (no caching of its own) except for the HVN cache required by the spec; the
 *   sandbox adds memoization around it from the outside, and bench/node_baseline.js loads
 *   this very file unchanged to reproduce the browser's way of calling filters.
 * - It uses only ECMAScript built-ins, so it runs in bare V8 (mini-racer) and in Node.
 */
var helpers = (function () {
  'use strict';

  // ---------------------------------------------------------------- parsing & scans

  function closeAt(klines, i) {
    return parseFloat(klines[i][4]);
  }

  /** Closes of every kline, parsed with parseFloat (NaN stays NaN). */
  function parseColumn(klines, col) {
    var n = klines.length;
    var out = new Array(n);
    for (var i = 0; i < n; i++) out[i] = parseFloat(klines[i][col]);
    return out;
  }

  /** Last element `!== null`, or null. */
  function lastNonNull(series) {
    if (!series) return null;
    for (var i = series.length - 1; i >= 0; i--) {
      if (series[i] !== null) return series[i];
    }
    return null;
  }

  function nullSeries(n) {
    var out = new Array(n);
    for (var i = 0; i < n; i++) out[i] = null;
    return out;
  }

  /** Mean of column `col` over the last `period` klines, summed oldest→newest; null on NaN. */
  function windowMean(klines, period, col) {
    if (!klines || klines.length < period || period <= 0) return null;
    var n = klines.length;
    var sum = 0;
    for (var i = n - period; i < n; i++) {
      var v = parseFloat(klines[i][col]);
      if (isNaN(v)) return null;
      sum += v;
    }
    return sum / period;
  }

  // ---------------------------------------------------------------- moving averages & volume

  function calculateMA(klines, period) {
    return windowMean(klines, period, 4);
  }

  function calculateMASeries(klines, period) {
    if (!klines) return [];
    var n = klines.length;
    var out = nullSeries(n);
    if (period <= 0 || n < period) return out;
    var closes = parseColumn(klines, 4);
    for (var i = period - 1; i < n; i++) {
      var sum = 0;
      var bad = false;
      for (var j = 0; j < period; j++) {
        var c = closes[i - j];
        if (isNaN(c)) {
          bad = true;
          break;
        }
        sum += c;
      }
      out[i] = bad ? null : sum / period;
    }
    return out;
  }

  function calculateSMA(values, period) {
    if (!values || values.length < period || period <= 0) return 0;
    var n = values.length;
    var sum = 0;
    for (var i = n - period; i < n; i++) sum += values[i];
    return sum / period;
  }

  function calculateAvgVolume(klines, period) {
    return windowMean(klines, period, 5);
  }

  // ---------------------------------------------------------------- RSI family

  function calculateRSI(klines, period) {
    if (period === undefined) period = 14;
    if (!klines || period <= 0) return null;
    var n = klines.length;
    if (n < period + 1) return null;
    var closes = parseColumn(klines, 4);
    for (var c = 0; c < n; c++) if (isNaN(closes[c])) return null;
    var out = nullSeries(n);
    var gains = 0;
    var losses = 0;
    for (var i = 1; i <= period; i++) {
      var change = closes[i] - closes[i - 1];
      if (change > 0) gains += change;
      else losses += -change;
    }
    var avgGain = gains / period;
    var avgLoss = losses / period;
    out[period] = rsiValue(avgGain, avgLoss);
    for (var k = period + 1; k < n; k++) {
      var ch = closes[k] - closes[k - 1];
      var gain = ch > 0 ? ch : 0;
      var loss = ch > 0 ? 0 : -ch;
      avgGain = (avgGain * (period - 1) + gain) / period;
      avgLoss = (avgLoss * (period - 1) + loss) / period;
      out[k] = rsiValue(avgGain, avgLoss);
    }
    return out;
  }

  function rsiValue(avgGain, avgLoss) {
    if (avgLoss === 0) return avgGain > 0 ? 100 : 50;
    return 100 - 100 / (1 + avgGain / avgLoss);
  }

  function getLatestRSI(klines, period) {
    if (period === undefined) period = 14;
    return lastNonNull(calculateRSI(klines, period));
  }

  function detectGenericDivergence(series1, series2, lookbackCandles, minPeakValleySeparation) {
    if (lookbackCandles === undefined) lookbackCandles = 30;
    if (minPeakValleySeparation === undefined) minPeakValleySeparation = 5;
    var sep = minPeakValleySeparation;
    if (!series1 || !series2 || series1.length !== series2.length) return null;
    var len = series1.length;
    if (len < Math.max(lookbackCandles, 2 * sep + 2)) return null;
    var take = Math.min(lookbackCandles, len);
    var s1 = series1.slice(-take);
    var s2 = series2.slice(-take);
    var w = s1.length;
    if (w < sep + 2) return null;
    var valleys = [];
    var peaks = [];
    for (var i = 1; i <= w - 2; i++) {
      if (s1[i - 1] === null || s1[i] === null || s1[i + 1] === null || s2[i] === null) continue;
      if (s1[i] < s1[i - 1] && s1[i] < s1[i + 1]) valleys.push(i);
      if (s1[i] > s1[i - 1] && s1[i] > s1[i + 1]) peaks.push(i);
    }
    for (var a = valleys.length - 1; a >= 0; a--) {
      var v2 = valleys[a];
      for (var b = a - 1; b >= 0; b--) {
        var v1 = valleys[b];
        if (v2 - v1 >= sep && s1[v2] < s1[v1] && s2[v2] > s2[v1]) return 'bullish_regular';
      }
    }
    for (var p = peaks.length - 1; p >= 0; p--) {
      var p2 = peaks[p];
      for (var q = p - 1; q >= 0; q--) {
        var p1 = peaks[q];
        if (p2 - p1 >= sep && s1[p2] > s1[p1] && s2[p2] < s2[p1]) return 'bearish_regular';
      }
    }
    return null;
  }

  function detectRSIDivergence(klines, rsiPeriod, lookbackCandles, minPeakValleySeparation) {
    if (rsiPeriod === undefined) rsiPeriod = 14;
    if (lookbackCandles === undefined) lookbackCandles = 30;
    if (minPeakValleySeparation === undefined) minPeakValleySeparation = 5;
    if (!klines) return null;
    var n = klines.length;
    if (n < Math.max(rsiPeriod + 1, lookbackCandles, 2 * minPeakValleySeparation + 2)) {
      return null;
    }
    var rsi = calculateRSI(klines, rsiPeriod);
    if (rsi === null) return null;
    var closes = parseColumn(klines, 4);
    for (var i = 0; i < n; i++) if (isNaN(closes[i])) closes[i] = null;
    return detectGenericDivergence(closes, rsi, lookbackCandles, minPeakValleySeparation);
  }

  function calculateStochRSI(klines, rsiPeriod, stochPeriod, kPeriod, dPeriod) {
    if (rsiPeriod === undefined) rsiPeriod = 14;
    if (stochPeriod === undefined) stochPeriod = 14;
    if (kPeriod === undefined) kPeriod = 3;
    if (dPeriod === undefined) dPeriod = 3;
    var rsi = calculateRSI(klines, rsiPeriod);
    if (rsi === null) return null;
    var n = klines.length;
    if (n < stochPeriod + kPeriod - 1) return null;
    var nonNull = 0;
    for (var c = 0; c < n; c++) if (rsi[c] !== null) nonNull++;
    if (nonNull < stochPeriod) return null;

    var raw = nullSeries(n);
    var seen = 0;
    for (var i = 0; i < n; i++) {
      if (rsi[i] === null) continue;
      seen++;
      if (seen < stochPeriod) continue;
      var max = -Infinity;
      var min = Infinity;
      for (var j = i - stochPeriod + 1; j <= i; j++) {
        max = Math.max(max, rsi[j]);
        min = Math.min(min, rsi[j]);
      }
      raw[i] = max === min ? 50 : ((rsi[i] - min) / (max - min)) * 100;
    }

    var kLine = nullSeries(n);
    for (var x = kPeriod - 1; x < n; x++) {
      var sum = 0;
      var ok = true;
      for (var y = 0; y < kPeriod; y++) {
        var r = raw[x - y];
        if (r === null) {
          ok = false;
          break;
        }
        sum += r;
      }
      if (ok) kLine[x] = sum / kPeriod;
    }

    var out = new Array(n);
    for (var z = 0; z < n; z++) {
      var full = z >= dPeriod - 1 && kLine[z] !== null;
      var dSum = 0;
      if (full) {
        for (var d = 0; d < dPeriod; d++) {
          var kv = kLine[z - d];
          if (kv === null) {
            full = false;
            break;
          }
          dSum += kv;
        }
      }
      out[z] = full ? { k: kLine[z], d: dSum / dPeriod } : { k: 0, d: 0 };
    }
    return out;
  }

  function getLatestStochRSI(klines, rsiPeriod, stochPeriod, kPeriod, dPeriod) {
    var series = calculateStochRSI(klines, rsiPeriod, stochPeriod, kPeriod, dPeriod);
    if (series === null) return null;
    for (var i = series.length - 1; i >= 0; i--) {
      if (series[i].k !== 0 || series[i].d !== 0) return series[i];
    }
    return null;
  }

  // ---------------------------------------------------------------- EMA & MACD

  /** Internal EMA of a numeric series (nulls allowed); not exported. */
  function emaOf(values, period) {
    var n = values.length;
    var out = nullSeries(n);
    if (period <= 0 || n < period) return out;
    var alpha = 2 / (period + 1);
    var seedEnd = -1;
    var run = 0;
    for (var i = 0; i < n; i++) {
      var v = values[i];
      if (v === null || isNaN(v)) {
        run = 0;
        continue;
      }
      run++;
      if (run === period) {
        seedEnd = i;
        break;
      }
    }
    if (seedEnd < 0) return out;
    var sum = 0;
    for (var j = seedEnd - period + 1; j <= seedEnd; j++) sum += values[j];
    var ema = sum / period;
    out[seedEnd] = ema;
    for (var k = seedEnd + 1; k < n; k++) {
      var x = values[k];
      if (x === null || isNaN(x)) break;
      ema = x * alpha + ema * (1 - alpha);
      out[k] = ema;
    }
    return out;
  }

  function closesOrNull(klines) {
    var closes = parseColumn(klines, 4);
    for (var i = 0; i < closes.length; i++) if (isNaN(closes[i])) closes[i] = null;
    return closes;
  }

  function calculateEMASeries(klines, period) {
    if (!klines) return [];
    return emaOf(closesOrNull(klines), period);
  }

  function getLatestEMA(klines, period) {
    return lastNonNull(calculateEMASeries(klines, period));
  }

  function calculateEMA(values, period) {
    if (!values || values.length < period || period <= 0) return 0;
    var alpha = 2 / (period + 1);
    var ema = values[0];
    for (var i = 1; i < values.length; i++) ema = values[i] * alpha + ema * (1 - alpha);
    return ema;
  }

  function calculateMACDValues(klines, shortPeriod, longPeriod, signalPeriod) {
    if (shortPeriod === undefined) shortPeriod = 12;
    if (longPeriod === undefined) longPeriod = 26;
    if (signalPeriod === undefined) signalPeriod = 9;
    if (!klines) return { macdLine: [], signalLine: [], histogram: [] };
    var n = klines.length;
    if (n < Math.max(longPeriod, shortPeriod, signalPeriod)) {
      return { macdLine: nullSeries(n), signalLine: nullSeries(n), histogram: nullSeries(n) };
    }
    var closes = closesOrNull(klines);
    var emaShort = emaOf(closes, shortPeriod);
    var emaLong = emaOf(closes, longPeriod);
    var macdLine = nullSeries(n);
    for (var i = 0; i < n; i++) {
      if (emaShort[i] !== null && emaLong[i] !== null) macdLine[i] = emaShort[i] - emaLong[i];
    }
    var signalLine = emaOf(macdLine, signalPeriod);
    var histogram = nullSeries(n);
    for (var j = 0; j < n; j++) {
      if (macdLine[j] !== null && signalLine[j] !== null) histogram[j] = macdLine[j] - signalLine[j];
    }
    return { macdLine: macdLine, signalLine: signalLine, histogram: histogram };
  }

  function getLatestMACD(klines, shortPeriod, longPeriod, signalPeriod) {
    var v = calculateMACDValues(klines, shortPeriod, longPeriod, signalPeriod);
    return {
      macd: lastNonNull(v.macdLine),
      signal: lastNonNull(v.signalLine),
      histogram: lastNonNull(v.histogram),
    };
  }

  function calculateMACD(closes, shortPeriod, longPeriod, signalPeriod) {
    if (shortPeriod === undefined) shortPeriod = 12;
    if (longPeriod === undefined) longPeriod = 26;
    if (signalPeriod === undefined) signalPeriod = 9;
    if (!closes || closes.length < longPeriod) return { MACD: 0, signal: 0, histogram: 0 };
    var macd = calculateEMA(closes, shortPeriod) - calculateEMA(closes, longPeriod);
    // The spec's helper list recomputes calculateEMA over every prefix closes[0..i]. A prefix
    // EMA is the running value of one left-to-right pass (same operations in the same order),
    // so carrying the running values gives bit-identical numbers in linear time.
    var list = [];
    var n = closes.length;
    if (n > 0) {
      var aS = 2 / (shortPeriod + 1);
      var aL = 2 / (longPeriod + 1);
      var emaS = closes[0];
      var emaL = closes[0];
      for (var i = 0; i < n; i++) {
        if (i > 0) {
          emaS = closes[i] * aS + emaS * (1 - aS);
          emaL = closes[i] * aL + emaL * (1 - aL);
        }
        if (i >= longPeriod - 1) {
          var len = i + 1;
          var s = len < shortPeriod || shortPeriod <= 0 ? 0 : emaS;
          var l = len < longPeriod || longPeriod <= 0 ? 0 : emaL;
          list.push(s - l);
        }
      }
    }
    var signal = calculateEMA(list, signalPeriod);
    return { MACD: macd, signal: signal, histogram: macd - signal };
  }

  // ---------------------------------------------------------------- oscillators & ranges

  function calculateADX(klines, period) {
    if (period === undefined) period = 14;
    if (!klines || klines.length < 2 * period) return 0;
    var n = klines.length;
    var trs = [];
    for (var i = 1; i < n; i++) {
      var h = parseFloat(klines[i][2]);
      var l = parseFloat(klines[i][3]);
      var pc = parseFloat(klines[i - 1][4]);
      trs.push(Math.max(h - l, Math.abs(h - pc), Math.abs(l - pc)));
    }
    var atr = calculateSMA(trs.slice(-period), period);
    var sum = 0;
    for (var j = n - period; j < n; j++) sum += closeAt(klines, j);
    var avgClose = sum / period;
    return Math.min(100, Math.max(0, (atr / avgClose) * 100 * 10));
  }

  function calculateStochastic(klines, kPeriod, dPeriod, smooth) {
    if (kPeriod === undefined) kPeriod = 14;
    if (!klines || klines.length < kPeriod) return { k: 0, d: 0 };
    var recent = klines.slice(-kPeriod);
    var hh = -Infinity;
    var ll = Infinity;
    for (var i = 0; i < recent.length; i++) {
      hh = Math.max(hh, parseFloat(recent[i][2]));
      ll = Math.min(ll, parseFloat(recent[i][3]));
    }
    var close = parseFloat(klines[klines.length - 1][4]);
    var k = hh > ll ? ((close - ll) / (hh - ll)) * 100 : 50;
    return { k: k, d: k * 0.9 };
  }

  function windowExtreme(klines, period, col, highest) {
    if (!klines || klines.length < period || period <= 0) return null;
    var n = klines.length;
    var best = highest ? -Infinity : Infinity;
    for (var i = n - period; i < n; i++) {
      var v = parseFloat(klines[i][col]);
      if (isNaN(v)) return null;
      best = highest ? Math.max(best, v) : Math.min(best, v);
    }
    return best;
  }

  function getHighestHigh(klines, period) {
    return windowExtreme(klines, period, 2, true);
  }

  function getLowestLow(klines, period) {
    return windowExtreme(klines, period, 3, false);
  }

  function detectEngulfingPattern(klines) {
    if (!klines || klines.length < 3) return null;
    var n = klines.length;
    var cur = klines[n - 2];
    var prev = klines[n - 3];
    var co = parseFloat(cur[1]);
    var cc = parseFloat(cur[4]);
    var po = parseFloat(prev[1]);
    var pc = parseFloat(prev[4]);
    if (isNaN(co) || isNaN(cc) || isNaN(po) || isNaN(pc)) return null;
    if (pc < po && cc > co && co < pc && cc > po) return 'bullish';
    if (pc > po && cc < co && co > pc && cc < po) return 'bearish';
    return null;
  }

  // ---------------------------------------------------------------- PVI

  function calculatePVISeries(klines, initialPVI) {
    if (initialPVI === undefined) initialPVI = 1000;
    if (!klines || klines.length === 0) return [];
    var n = klines.length;
    var out = nullSeries(n);
    out[0] = initialPVI;
    for (var i = 1; i < n; i++) {
      var prev = out[i - 1];
      if (prev === null) break;
      var c = parseFloat(klines[i][4]);
      var pc = parseFloat(klines[i - 1][4]);
      var v = parseFloat(klines[i][5]);
      var pv = parseFloat(klines[i - 1][5]);
      if (isNaN(c) || isNaN(pc) || isNaN(v) || isNaN(pv)) break;
      if (v > pv) {
        if (pc === 0) break;
        out[i] = prev + ((c - pc) / pc) * prev;
      } else {
        out[i] = prev;
      }
    }
    return out;
  }

  function getLatestPVI(klines, initialPVI) {
    return lastNonNull(calculatePVISeries(klines, initialPVI));
  }

  // ---------------------------------------------------------------- high-volume nodes

  var hvnCache = new Map();
  var HVN_CACHE_MS = 60000;

  function calculateHighVolumeNodes(klines, options) {
    if (options === undefined) options = {};
    var bins = options.bins === undefined ? 30 : options.bins;
    var threshold = options.threshold === undefined ? 70 : options.threshold;
    var lookback = options.lookback === undefined ? 250 : options.lookback;
    var minStrength = options.minStrength === undefined ? 50 : options.minStrength;
    var peakTolerance = options.peakTolerance === undefined ? 0.05 : options.peakTolerance;
    var cacheKey = options.cacheKey;

    if (cacheKey) {
      var hit = hvnCache.get(cacheKey);
      if (hit && Date.now() - hit.timestamp < HVN_CACHE_MS) return hit.nodes;
    }
    if (!klines || klines.length === 0) return [];
    var recent = klines.slice(-lookback);

    var min = Infinity;
    var max = -Infinity;
    for (var i = 0; i < recent.length; i++) {
      var lo0 = parseFloat(recent[i][3]);
      var hi0 = parseFloat(recent[i][2]);
      if (!isNaN(lo0) && lo0 < min) min = lo0;
      if (!isNaN(hi0) && hi0 > max) max = hi0;
    }
    if (min === Infinity || max === -Infinity || min >= max) return [];

    var binSize = (max - min) / bins;
    var vol = [];
    var buy = [];
    for (var b = 0; b < bins; b++) {
      vol.push(0);
      buy.push(0);
    }
    for (var k = 0; k < recent.length; k++) {
      var row = recent[k];
      var open = parseFloat(row[1]);
      var high = parseFloat(row[2]);
      var low = parseFloat(row[3]);
      var close = parseFloat(row[4]);
      var volume = parseFloat(row[5]);
      if (isNaN(open) || isNaN(high) || isNaN(low) || isNaN(close) || isNaN(volume)) continue;
      var takerBuy = parseFloat(row[9]);
      if (isNaN(takerBuy)) takerBuy = 0;
      var lo = Math.min(open, close, low);
      var hi = Math.max(open, close, high);
      var s = Math.floor((lo - min) / binSize);
      var e = Math.floor((hi - min) / binSize);
      var spanned = Math.max(1, e - s + 1);
      var last = Math.min(bins - 1, e);
      for (var x = Math.max(0, s); x <= last; x++) {
        vol[x] += volume / spanned;
        buy[x] += takerBuy / spanned;
      }
    }

    var sorted = vol.slice().sort(function (p, q) {
      return p - q;
    });
    var idx = Math.floor((threshold / 100) * bins);
    var thr = idx >= 0 && idx < sorted.length ? sorted[idx] : 0;
    var maxVol = -Infinity;
    for (var m = 0; m < vol.length; m++) maxVol = Math.max(maxVol, vol[m]);

    var tol = 1 + peakTolerance;
    var nodes = [];
    for (var j = 0; j < bins; j++) {
      var v = vol[j];
      if (!(v >= thr && v > 0)) continue;
      var before = j > 0 ? vol[j - 1] : 0;
      var after = j < bins - 1 ? vol[j + 1] : 0;
      if (!(v > before * tol && v > after * tol)) continue;
      var binMin = min + j * binSize;
      var binMax = binMin + binSize;
      var strength = maxVol > 0 ? (v / maxVol) * 100 : 0;
      if (strength >= minStrength) {
        nodes.push({
          price: (binMin + binMax) / 2,
          volume: v,
          buyVolume: buy[j],
          sellVolume: v - buy[j],
          strength: strength,
          priceRange: [binMin, binMax],
        });
      }
    }
    nodes.sort(function (p, q) {
      return q.strength - p.strength;
    });
    if (cacheKey) hvnCache.set(cacheKey, { nodes: nodes, timestamp: Date.now() });
    return nodes;
  }

  function isNearHVN(price, hvnNodes, tolerance) {
    if (tolerance === undefined) tolerance = 0.5;
    if (!hvnNodes || hvnNodes.length === 0 || isNaN(price)) return false;
    for (var i = 0; i < hvnNodes.length; i++) {
      if (Math.abs(price - hvnNodes[i].price) <= price * (tolerance / 100)) return true;
    }
    return false;
  }

  function getClosestHVN(price, hvnNodes, direction) {
    if (direction === undefined) direction = 'both';
    if (!hvnNodes || hvnNodes.length === 0 || isNaN(price)) return null;
    var best = null;
    var bestDist = Infinity;
    for (var i = 0; i < hvnNodes.length; i++) {
      var node = hvnNodes[i];
      var d = node.price - price;
      if (direction === 'above' && d < 0) continue;
      if (direction === 'below' && d > 0) continue;
      var dist = Math.abs(d);
      if (dist < bestDist) {
        bestDist = dist;
        best = node;
      }
    }
    return best;
  }

  function countHVNInRange(priceLow, priceHigh, hvnNodes) {
    if (!hvnNodes || hvnNodes.length === 0 || isNaN(priceLow) || isNaN(priceHigh)) return 0;
    var count = 0;
    for (var i = 0; i < hvnNodes.length; i++) {
      var p = hvnNodes[i].price;
      if (priceLow <= p && p <= priceHigh) count++;
    }
    return count;
  }

  function clearHVNCache(cacheKey) {
    if (cacheKey) hvnCache.delete(cacheKey);
    else hvnCache.clear();
  }

  // ---------------------------------------------------------------- Bollinger Bands

  function calculateBollingerBands(klines, period, stdDev) {
    if (period === undefined) period = 20;
    if (stdDev === undefined) stdDev = 2;
    var n = klines ? klines.length : 0;
    var upper = nullSeries(n);
    var middle = nullSeries(n);
    var lower = nullSeries(n);
    if (!klines || n < period || period <= 0) {
      return { upper: upper, middle: middle, lower: lower };
    }
    middle = calculateMASeries(klines, period);
    var closes = parseColumn(klines, 4);
    for (var i = 0; i < n; i++) {
      var mid = middle[i];
      if (mid === null) continue;
      var variance = 0;
      for (var j = 0; j < period; j++) {
        var diff = closes[i - j] - mid;
        variance += diff * diff;
      }
      var sd = Math.sqrt(variance / period);
      upper[i] = mid + stdDev * sd;
      lower[i] = mid - stdDev * sd;
    }
    return { upper: upper, middle: middle, lower: lower };
  }

  function getLatestBollingerBands(klines, period, stdDev) {
    var bb = calculateBollingerBands(klines, period, stdDev);
    for (var i = bb.middle.length - 1; i >= 0; i--) {
      if (bb.upper[i] !== null && bb.middle[i] !== null && bb.lower[i] !== null) {
        return { upper: bb.upper[i], middle: bb.middle[i], lower: bb.lower[i] };
      }
    }
    return { upper: null, middle: null, lower: null };
  }

  // ---------------------------------------------------------------- VWAP

  function typicalPrice(row) {
    return (parseFloat(row[2]) + parseFloat(row[3]) + parseFloat(row[4])) / 3;
  }

  function calculateVWAP(klines) {
    if (!klines || klines.length === 0) return 0;
    var pv = 0;
    var vol = 0;
    for (var i = 0; i < klines.length; i++) {
      var v = parseFloat(klines[i][5]);
      pv += typicalPrice(klines[i]) * v;
      vol += v;
    }
    return vol > 0 ? pv / vol : 0;
  }

  function anchorStart(n, anchorPeriod) {
    return anchorPeriod && anchorPeriod < n ? n - anchorPeriod : 0;
  }

  function calculateVWAPSeries(klines, anchorPeriod) {
    if (!klines || klines.length === 0) return [];
    var n = klines.length;
    var out = nullSeries(n);
    var start = anchorStart(n, anchorPeriod);
    var pv = 0;
    var vol = 0;
    for (var i = start; i < n; i++) {
      var row = klines[i];
      var h = parseFloat(row[2]);
      var l = parseFloat(row[3]);
      var c = parseFloat(row[4]);
      var v = parseFloat(row[5]);
      if (isNaN(h) || isNaN(l) || isNaN(c) || isNaN(v)) continue;
      pv += ((h + l + c) / 3) * v;
      vol += v;
      out[i] = vol > 0 ? pv / vol : null;
    }
    return out;
  }

  function getLatestVWAP(klines, anchorPeriod) {
    return lastNonNull(calculateVWAPSeries(klines, anchorPeriod));
  }

  function calculateVWAPBands(klines, anchorPeriod, stdDevMultiplier) {
    if (stdDevMultiplier === undefined) stdDevMultiplier = 1;
    if (!klines) return { vwap: [], upperBand: [], lowerBand: [] };
    var n = klines.length;
    var vwap = calculateVWAPSeries(klines, anchorPeriod);
    var upperBand = nullSeries(n);
    var lowerBand = nullSeries(n);
    if (n === 0) return { vwap: nullSeries(0), upperBand: upperBand, lowerBand: lowerBand };
    var start = anchorStart(n, anchorPeriod);
    var tp = new Array(n);
    for (var t = start; t < n; t++) {
      var row = klines[t];
      var h = parseFloat(row[2]);
      var l = parseFloat(row[3]);
      var c = parseFloat(row[4]);
      tp[t] = isNaN(h) || isNaN(l) || isNaN(c) ? null : (h + l + c) / 3;
    }
    for (var i = start; i < n; i++) {
      var center = vwap[i];
      if (center === null) continue;
      var sum = 0;
      var count = 0;
      for (var j = start; j <= i; j++) {
        var p = tp[j];
        if (p === null) continue;
        var diff = p - center;
        sum += diff * diff;
        count++;
      }
      var sd = Math.sqrt(sum / count);
      upperBand[i] = center + sd * stdDevMultiplier;
      lowerBand[i] = center - sd * stdDevMultiplier;
    }
    return { vwap: vwap, upperBand: upperBand, lowerBand: lowerBand };
  }

  function getLatestVWAPBands(klines, anchorPeriod, stdDevMultiplier) {
    var bands = calculateVWAPBands(klines, anchorPeriod, stdDevMultiplier);
    for (var i = bands.vwap.length - 1; i >= 0; i--) {
      if (bands.vwap[i] !== null) {
        return { vwap: bands.vwap[i], upperBand: bands.upperBand[i], lowerBand: bands.lowerBand[i] };
      }
    }
    return { vwap: null, upperBand: null, lowerBand: null };
  }

  return {
    calculateMA: calculateMA,
    calculateMASeries: calculateMASeries,
    calculateSMA: calculateSMA,
    calculateAvgVolume: calculateAvgVolume,
    calculateRSI: calculateRSI,
    getLatestRSI: getLatestRSI,
    detectGenericDivergence: detectGenericDivergence,
    detectRSIDivergence: detectRSIDivergence,
    calculateStochRSI: calculateStochRSI,
    getLatestStochRSI: getLatestStochRSI,
    calculateEMASeries: calculateEMASeries,
    getLatestEMA: getLatestEMA,
    calculateEMA: calculateEMA,
    calculateMACDValues: calculateMACDValues,
    getLatestMACD: getLatestMACD,
    calculateMACD: calculateMACD,
    calculateADX: calculateADX,
    calculateStochastic: calculateStochastic,
    getHighestHigh: getHighestHigh,
    getLowestLow: getLowestLow,
    detectEngulfingPattern: detectEngulfingPattern,
    calculatePVISeries: calculatePVISeries,
    getLatestPVI: getLatestPVI,
    calculateHighVolumeNodes: calculateHighVolumeNodes,
    isNearHVN: isNearHVN,
    getClosestHVN: getClosestHVN,
    countHVNInRange: countHVNInRange,
    clearHVNCache: clearHVNCache,
    calculateBollingerBands: calculateBollingerBands,
    getLatestBollingerBands: getLatestBollingerBands,
    calculateVWAP: calculateVWAP,
    calculateVWAPSeries: calculateVWAPSeries,
    getLatestVWAP: getLatestVWAP,
    calculateVWAPBands: calculateVWAPBands,
    getLatestVWAPBands: getLatestVWAPBands,
  };
})();
