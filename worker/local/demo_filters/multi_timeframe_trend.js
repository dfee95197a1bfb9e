// name: Multi-timeframe trend alignment
// refreshInterval: 1h
// requiredTimeframes: 1h, 4h, 1d
// Daily trend up (MA20 rising), 4h price above EMA50, 1h RSI in the 50-70 momentum zone.
const daily = timeframes['1d'];
const h4 = timeframes['4h'];
const h1 = timeframes['1h'];

const maNow = helpers.calculateMA(daily, 20);
const maPrev = helpers.calculateMA(daily.slice(0, -5), 20);
if (maNow === null || maPrev === null || maNow <= maPrev) return false;

const ema50 = helpers.getLatestEMA(h4, 50);
const price = parseFloat(ticker.c);
if (ema50 === null || price < ema50) return false;

const rsi = helpers.getLatestRSI(h1, 14);
const adx = helpers.calculateADX(h1, 14);
return rsi !== null && rsi > 50 && rsi < 70 && adx > 5;
