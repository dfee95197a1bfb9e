// name: Positive volume index accumulation
// refreshInterval: 4h
// requiredTimeframes: 4h, 1d
// PVI above its 50-period average on 4h (smart money accumulating) and the daily close above
// its 20-day MA.
const h4 = timeframes['4h'];
const pvi = helpers.calculatePVISeries(h4, 1000);
const values = pvi.filter((v) => v !== null);
if (values.length < 60) return false;

const pviAvg = helpers.calculateSMA(values, 50);
const latestPvi = helpers.getLatestPVI(h4);
const dailyMa = helpers.calculateMA(timeframes['1d'], 20);
const dailyClose = parseFloat(timeframes['1d'][timeframes['1d'].length - 1][4]);
const ema = helpers.calculateEMA(values.slice(-30), 10);
return latestPvi > pviAvg && latestPvi >= ema * 0.99 && dailyMa !== null && dailyClose > dailyMa;
