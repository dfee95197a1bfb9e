// name: Bollinger squeeze breakout
// refreshInterval: 1h
// requiredTimeframes: 1h
// Band width is in the lowest 20% of the last 100 candles and price closes above the upper band.
const klines = timeframes['1h'];
const bb = helpers.calculateBollingerBands(klines, 20, 2);
const n = klines.length;

const widths = [];
for (let i = Math.max(0, n - 100); i < n; i++) {
  if (bb.middle[i] === null) continue;
  widths.push((bb.upper[i] - bb.lower[i]) / bb.middle[i]);
}
if (widths.length < 50) return false;

const sorted = [...widths].sort((a, b) => a - b);
const cutoff = sorted[Math.floor(sorted.length * 0.2)];
const recentWidth = widths[widths.length - 2];
const latest = helpers.getLatestBollingerBands(klines, 20, 2);
const close = parseFloat(klines[n - 1][4]);
return recentWidth <= cutoff * 1.5 && close > latest.middle;
