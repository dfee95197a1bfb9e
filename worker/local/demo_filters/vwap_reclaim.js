// name: VWAP reclaim (session)
// refreshInterval: 15m
// requiredTimeframes: 15m
// Price crossed back above the VWAP anchored on the last 96 candles (one day of 15m) and
// sits inside the upper band.
const klines = timeframes['15m'];
const bands = helpers.calculateVWAPBands(klines, 96, 2);
const n = klines.length;
const prevClose = parseFloat(klines[n - 2][4]);
const close = parseFloat(klines[n - 1][4]);
const vwapPrev = bands.vwap[n - 2];
const vwapNow = helpers.getLatestVWAP(klines, 96);
if (vwapPrev === null || vwapNow === null) return false;

const latest = helpers.getLatestVWAPBands(klines, 96, 2);
return prevClose < vwapPrev * 1.002 && close > vwapNow && close < latest.upperBand;
