// name: MACD histogram flip on 4h
// refreshInterval: 4h
// requiredTimeframes: 4h
// The MACD histogram turned positive on the last two candles while MACD is still below zero
// (early momentum), and the 24h change is not already extreme.
const klines = timeframes['4h'];
const { macdLine, histogram } = helpers.calculateMACDValues(klines, 12, 26, 9);
const n = klines.length;
const h0 = histogram[n - 1];
const h1 = histogram[n - 2];
const h2 = histogram[n - 3];
if (h0 === null || h1 === null || h2 === null) return false;

const latest = helpers.getLatestMACD(klines);
const change = parseFloat(ticker.P);
return h2 < 0 && h1 > h2 && h0 > 0 && latest.macd < 0 && macdLine[n - 1] > macdLine[n - 2] && Math.abs(change) < 15;
