#!/usr/bin/env node
/*
 * Plain Node.js baseline: evaluate traders the way the browser Web Worker did.
 *
 * Why: bench/bench_sandbox.py compares our runtime's per-trader-run time with this. It loads
 * the SAME worker/sandbox/js/helpers.js source, then for every trader: `new Function` per trader,
 * loop over the symbols, hvnNodes computed afresh per (trader, symbol), no memo, no freezing
 * (docs/filter-contract.md). It also prints each trader's matches so the bench can check that both
 * runtimes agree.
 *
 * Usage: node bench/node_baseline.js INPUT.json REPEATS
 *   INPUT.json = {symbols, tickers, historicalData, traders: [{traderId, filterCode,
 *                 refreshInterval, requiredTimeframes}]}
 * Prints one JSON line: {passMs: [...], perTraderMs: {id: [...]}, results: {id: [symbols]},
 *                        heapUsedBytes}
 */
'use strict';

const fs = require('fs');
const path = require('path');
const vm = require('vm');

const helpersPath = path.join(__dirname, '..', 'worker', 'sandbox', 'js', 'helpers.js');
vm.runInThisContext(fs.readFileSync(helpersPath, 'utf8'), { filename: helpersPath });
const helpers = globalThis.helpers;

function compile(code) {
  return new Function(
    'ticker',
    'timeframes',
    'helpers',
    'hvnNodes',
    'try {\n' + code + '\n} catch (e) { return false; }',
  );
}

function pickHvnTf(tfs) {
  if (tfs.includes('1d')) return '1d';
  if (tfs.includes('4h')) return '4h';
  if (tfs.includes('1h')) return '1h';
  return tfs[0];
}

function runTrader(trader, data) {
  const refreshInterval = trader.refreshInterval || '1m';
  const tfs = trader.requiredTimeframes == null ? [refreshInterval || '1m'] : trader.requiredTimeframes;
  let fn;
  try {
    fn = compile(trader.filterCode);
  } catch (e) {
    return null;
  }
  const matches = [];
  for (const sym of data.symbols) {
    const ticker = data.tickers[sym];
    const history = data.historicalData[sym];
    if (!ticker || !history) continue;
    const timeframes = {};
    let skip = false;
    for (const tf of tfs) {
      const k = history[tf];
      if (!k || k.length < 30) {
        skip = true;
        break;
      }
      timeframes[tf] = k;
    }
    if (skip) continue;
    try {
      const hvnTf = pickHvnTf(tfs);
      const hvnNodes = helpers.calculateHighVolumeNodes(timeframes[hvnTf], {
        lookback: Math.min(timeframes[hvnTf].length, 100),
      });
      if (fn(ticker, timeframes, helpers, hvnNodes)) matches.push(sym);
    } catch (e) {
      // no match
    }
  }
  return matches;
}

function main() {
  const [input, repeatsArg] = process.argv.slice(2);
  const repeats = Number(repeatsArg || 5);
  const data = JSON.parse(fs.readFileSync(input, 'utf8'));
  const passMs = [];
  const perTraderMs = {};
  const results = {};
  for (let rep = 0; rep < repeats; rep++) {
    const passStart = process.hrtime.bigint();
    for (const trader of data.traders) {
      const t0 = process.hrtime.bigint();
      const matches = runTrader(trader, data);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      (perTraderMs[trader.traderId] = perTraderMs[trader.traderId] || []).push(ms);
      results[trader.traderId] = matches;
    }
    passMs.push(Number(process.hrtime.bigint() - passStart) / 1e6);
  }
  process.stdout.write(
    JSON.stringify({ passMs, perTraderMs, results, heapUsedBytes: process.memoryUsage().heapUsed }) + '\n',
  );
}

main();
