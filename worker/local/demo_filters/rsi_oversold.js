// name: RSI oversold with volume
// refreshInterval: 15m
// requiredTimeframes: 15m
// RSI(14) on 15m below 35 while the last closed candle trades at least 80% of average volume.
const klines = timeframes['15m'];
const rsi = helpers.getLatestRSI(klines, 14);
if (rsi === null) return false;

const avgVolume = helpers.calculateAvgVolume(klines, 20);
const lastClosed = klines[klines.length - 2];
const lastVolume = parseFloat(lastClosed[5]);

return rsi < 35 && avgVolume !== null && lastVolume > avgVolume * 0.8;
