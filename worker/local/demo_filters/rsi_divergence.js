// name: Bullish RSI divergence with engulfing
// refreshInterval: 1h
// requiredTimeframes: 1h
// A bullish regular divergence on 1h RSI, confirmed by a bullish engulfing candle or a
// stochastic reading below 30.
const klines = timeframes['1h'];
const divergence = helpers.detectRSIDivergence(klines, 14, 40, 5);
if (divergence !== 'bullish_regular') return false;

const pattern = helpers.detectEngulfingPattern(klines);
const stoch = helpers.calculateStochastic(klines, 14, 3, 3);
const low = helpers.getLowestLow(klines, 20);
const high = helpers.getHighestHigh(klines, 20);
const price = parseFloat(ticker.c);
const inLowerHalf = low !== null && high !== null && price < (low + high) / 2;
return pattern === 'bullish' || (stoch.k < 30 && inLowerHalf);
