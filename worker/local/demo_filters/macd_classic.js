// name: Classic MACD on closes
// refreshInterval: 1h
// requiredTimeframes: 1h
// MACD above its signal line computed the classic way from a close array, and price above
// the 50-candle moving average.
const klines = timeframes['1h'];
const closes = klines.map((k) => parseFloat(k[4]));
const macd = helpers.calculateMACD(closes.slice(-120), 12, 26, 9);
const ma50 = helpers.calculateMA(klines, 50);
const maSeries = helpers.calculateMASeries(klines, 50);
const rising = maSeries[maSeries.length - 1] > maSeries[maSeries.length - 6];
return macd.histogram > 0 && macd.MACD > 0 && ma50 !== null && closes[closes.length - 1] > ma50 && rising;
