// name: Volume spike with green candle
// refreshInterval: 5m
// requiredTimeframes: 5m
// A 5m candle with 2.5x the 20-candle average volume, closing green, on a liquid pair.
const klines = timeframes['5m'];
const n = klines.length;
const candle = klines[n - 2];
const open = parseFloat(candle[1]);
const close = parseFloat(candle[4]);
const volume = parseFloat(candle[5]);

const previous = klines.slice(n - 22, n - 2);
const avg = previous.reduce((sum, k) => sum + parseFloat(k[5]), 0) / previous.length;
const quoteVolume = parseFloat(ticker.q);

return volume > avg * 2.5 && close > open && quoteVolume > 1000000;
