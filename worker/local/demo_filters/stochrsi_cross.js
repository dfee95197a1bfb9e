// name: Stochastic RSI oversold cross
// refreshInterval: 15m
// requiredTimeframes: 15m
// %K crosses above %D while both are below 20.
const klines = timeframes['15m'];
const stoch = helpers.calculateStochRSI(klines, 14, 14, 3, 3);
if (!stoch) return false;

const n = stoch.length;
const now = stoch[n - 1];
const prev = stoch[n - 2];
const latest = helpers.getLatestStochRSI(klines);
if (!latest) return false;

return prev.k <= prev.d && now.k > now.d && now.k < 20 && latest.d < 25;
