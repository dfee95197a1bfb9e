// name: EMA 9/21 golden cross
// refreshInterval: 1h
// requiredTimeframes: 1h
// The 9 EMA crossed above the 21 EMA within the last 3 candles and price holds above both.
const klines = timeframes['1h'];
const fast = helpers.calculateEMASeries(klines, 9);
const slow = helpers.calculateEMASeries(klines, 21);
const n = klines.length;
const price = parseFloat(ticker.c);

let crossed = false;
for (let i = n - 3; i < n; i++) {
  if (fast[i - 1] === null || slow[i - 1] === null) continue;
  if (fast[i - 1] <= slow[i - 1] && fast[i] > slow[i]) {
    crossed = true;
    break;
  }
}
return crossed && price > fast[n - 1] && price > slow[n - 1];
