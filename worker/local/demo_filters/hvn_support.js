// name: Bounce off high-volume node
// refreshInterval: 1h
// requiredTimeframes: 1h, 4h
// Price sits just above a strong 4h volume node (support) with room to the next node above.
const price = parseFloat(ticker.c);
const nodes = hvnNodes.length > 0
  ? hvnNodes
  : helpers.calculateHighVolumeNodes(timeframes['4h'], { lookback: 100 });
if (nodes.length === 0) return false;

const support = helpers.getClosestHVN(price, nodes, 'below');
if (!support || support.strength < 60) return false;

const resistance = helpers.getClosestHVN(price, nodes, 'above');
const room = resistance ? (resistance.price - price) / price : 0.05;
const near = helpers.isNearHVN(price, [support], 1.5);
const clustered = helpers.countHVNInRange(price * 0.97, price * 1.03, nodes);
const oneHourNodes = helpers.calculateHighVolumeNodes(timeframes['1h'], { lookback: 100, bins: 20 });
return near && room > 0.01 && clustered <= 2 && oneHourNodes.length >= 0;
