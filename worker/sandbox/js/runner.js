/*
 * The trader runner inside the sandbox isolate: it holds the frozen market snapshot and
 * evaluates traders over it exactly as the browser worker did (FILTER_API.md §2).
 *
 * Why it is shaped like this:
 * - Snapshot data is parsed once per version (JSON.parse) and deep-frozen, so every trader
 *   reads the same objects (as in the browser) but none can change them for the others.
 * - Traders run in batches inside one V8 call because a call from Python costs ~0.3 ms;
 *   the batch publishes which trader is running in a SharedArrayBuffer that the Python
 *   watchdog reads to enforce each trader's own time budget.
 * - Everything a filter can reach is frozen or per-trader: the helpers namespace, the
 *   intrinsics (lockdown.js), the HVN cache (cleared before each trader) and sloppy-mode
 *   globals (deleted after each trader).
 * - Entry points require a secret token, so filter code that finds `__traderctl` cannot
 *   load data or start runs.
 *
 * This file is one function expression; worker/sandbox_bootstrap.py calls it with the
 * token, the helpers object, lockdown.js and memo.js.
 */
(function makeRunner(token, rawHelpers, lockdown, makeMemo, options) {
  'use strict';

  var globalObj = globalThis;
  var SAB = SharedArrayBuffer;
  var jsonParse = JSON.parse;
  var jsonStringify = JSON.stringify;
  var freeze = Object.freeze;
  var hasOwn = Object.prototype.hasOwnProperty;
  var ownKeys = Reflect.ownKeys;
  var deleteProperty = Reflect.deleteProperty;
  var getProto = Object.getPrototypeOf;
  var setProto = Object.setPrototypeOf;
  var isExtensible = Object.isExtensible;
  var atomicsStore = Atomics.store;
  var dateNow = Date.now;
  var FunctionCtor = Function;
  var slice = Array.prototype.slice;
  var MIN_KLINES = 30;
  var MAX_MESSAGE = 500;
  var FROZEN_WRITE = /read[- ]only|not extensible|Cannot (?:add|assign|delete|redefine|define)|frozen/;

  // --- helpers namespaces ------------------------------------------------------------
  var rawFns = {};
  var helperNames = Object.keys(rawHelpers).sort();
  for (var h = 0; h < helperNames.length; h++) rawFns[helperNames[h]] = rawHelpers[helperNames[h]];
  var clearHVN = typeof rawFns.clearHVNCache === 'function' ? rawFns.clearHVNCache : function () {};
  var hvnRaw = rawFns.calculateHighVolumeNodes;
  var memo = makeMemo(rawFns, options.memoCells);
  var memoFns = memo.memoized();

  /** A frozen module-namespace look-alike: null prototype, sorted keys, toStringTag. */
  function namespace(fns) {
    var ns = Object.create(null);
    for (var i = 0; i < helperNames.length; i++) {
      Object.defineProperty(ns, helperNames[i], {
        value: fns[helperNames[i]],
        writable: true,
        enumerable: true,
        configurable: false,
      });
    }
    Object.defineProperty(ns, Symbol.toStringTag, { value: 'Module' });
    return ns;
  }
  var nsRaw = namespace(rawFns);
  var nsMemo = namespace(memoFns);
  var hvnMemo = memoFns.calculateHighVolumeNodes;

  // The global `helpers` binding of the loaded bundle is no longer needed by anyone.
  if (hasOwn.call(globalObj, 'helpers')) globalObj.helpers = undefined;

  var locked = lockdown(globalObj);
  locked.harden([nsRaw, nsMemo, rawHelpers]);
  var verifyBuiltins = locked.verify;

  var baselineKeys = new Set(ownKeys(globalObj));
  var baselineProto = getProto(globalObj);

  // --- snapshot store ----------------------------------------------------------------
  var tickers = freeze({});
  var series = Object.create(null); // interval -> {SYM: frozen Kline[]}
  var versions = Object.create(null);

  function checkToken(t) {
    if (t !== token) throw new Error('traderctl runner: bad token');
  }

  /*
   * Kline rows are frozen and shared by every trader. The outer arrays are NOT frozen: V8's
   * fast paths for slice/map/filter do not apply to frozen (or sealed) arrays (slice of 100
   * rows: 0.1 us -> 16 us), so the runner keeps these masters private and hands every
   * (trader, symbol) its own cheap copy (`master.slice()`, 250 pointers). A filter may then
   * reverse()/pop()/push() its copy exactly as in the browser without affecting anyone.
   */
  function freezeSeries(arr) {
    if (!Array.isArray(arr)) return arr;
    for (var j = 0; j < arr.length; j++) {
      var row = arr[j];
      if (row !== null && typeof row === 'object') freeze(row);
    }
    memo.register(arr);
    return arr;
  }

  /*
   * Series are parsed lazily, per symbol. JSON.parse of a whole snapshot (100 symbols x 6
   * timeframes x 250 klines, 22 MB) takes ~320 ms in V8 here, Node's own parse included;
   * a scan that only finds where each symbol's array starts and ends takes a few ms. The
   * first trader that reads a (timeframe, symbol) parses and freezes that array, once per
   * version; symbols nobody evaluates (the free and pro tiers read the top 20 / 50) are
   * never parsed. Results are the same objects either way: one master array per version.
   */
  var PENDING = freeze({});
  var pendingText = {}; // interval -> {text, spans: {symbol: [start, end]}}

  /**
   * {symbol: [start, end]} of each kline array in a compact JSON object text such as the
   * database builds ('{"BTCUSDT":[[...],...],"ETHUSDT":[[...]]}'), or null when the text
   * has another layout (whitespace, escaped keys, non-array values), which is then parsed
   * whole. A kline array only ever contains '],[' between rows, so '],"' followed by a key
   * and ':[' marks the next symbol. A regex finds those in ~20 ms for 22 MB, where a
   * character loop took longer than JSON.parse itself.
   */
  var SYMBOL_KEY = /(?:^\{|\],)("[^"\\]*"):\[/g;

  function objectSpans(text) {
    var n = text.length;
    if (n < 2 || text.charCodeAt(0) !== 123 /* { */ || text.charCodeAt(n - 1) !== 125) return null;
    if (n === 2) return {};
    var spans = {};
    var key = null;
    var start = 0;
    var count = 0;
    SYMBOL_KEY.lastIndex = 0;
    var m;
    while ((m = SYMBOL_KEY.exec(text)) !== null) {
      var valueStart = m.index + m[0].length - 1; // the '[' that opens the value
      if (key !== null) spans[key] = [start, m.index + 1];
      key = jsonParse(m[1]);
      start = valueStart;
      SYMBOL_KEY.lastIndex = valueStart;
      count++;
    }
    if (key === null) return null;
    spans[key] = [start, n - 1];
    // Every value must be one array ending right before the next key (or the closing brace).
    if (text.charCodeAt(n - 2) !== 93 /* ] */ || Object.keys(spans).length !== count) return null;
    return spans;
  }

  /** A map {symbol: PENDING} over the text's symbols (eagerly parsed if it is unusual). */
  function lazySeriesMap(interval, text) {
    var spans = objectSpans(text);
    if (spans === null) {
      // Not a plain object text: parse it whole, which also reports any syntax error.
      var parsed = jsonParse(text);
      var keys = Object.keys(parsed);
      for (var k = 0; k < keys.length; k++) freezeSeries(parsed[keys[k]]);
      delete pendingText[interval];
      return parsed;
    }
    var map = {};
    var syms = Object.keys(spans);
    for (var s = 0; s < syms.length; s++) map[syms[s]] = PENDING;
    pendingText[interval] = { text: text, spans: spans };
    return map;
  }

  /** The master kline array of (timeframe, symbol), parsing it on first use. */
  function klinesOf(tf, byTf, sym) {
    var kl = byTf[sym];
    if (kl !== PENDING) return kl;
    var pending = pendingText[tf];
    var span = pending.spans[sym];
    var parsed;
    try {
      parsed = jsonParse(pending.text.substring(span[0], span[1]));
    } catch (e) {
      // The split was wrong for this text after all: fall back to the whole text.
      parsed = jsonParse(pending.text)[sym];
    }
    kl = freezeSeries(parsed);
    byTf[sym] = kl;
    return kl;
  }

  /** The trader's own copy of a master series; the memo knows which master it came from. */
  function traderCopy(master) {
    var copy = slice.call(master);
    memo.alias(copy, master);
    return copy;
  }

  function freezeTickers(map) {
    var syms = Object.keys(map);
    for (var i = 0; i < syms.length; i++) {
      var t = map[syms[i]];
      if (t !== null && typeof t === 'object') freeze(t);
    }
    return freeze(map);
  }

  /** Release the memo entries of a replaced interval's arrays. */
  function forget(map) {
    if (map === undefined) return;
    var syms = Object.keys(map);
    for (var i = 0; i < syms.length; i++) memo.drop(map[syms[i]]);
  }

  // --- per-trader isolation ----------------------------------------------------------
  var tainted = '';

  /** Delete globals created by filter code; detect what cannot be undone. */
  function cleanGlobals() {
    if (getProto(globalObj) !== baselineProto && !Reflect.setPrototypeOf(globalObj, baselineProto)) {
      tainted = 'the global object prototype was changed';
    }
    var keys = ownKeys(globalObj);
    for (var i = 0; i < keys.length; i++) {
      if (!baselineKeys.has(keys[i]) && !deleteProperty(globalObj, keys[i])) {
        tainted = 'a non-deletable global was defined: ' + String(keys[i]);
      }
    }
    if (!isExtensible(globalObj)) tainted = 'the global object was made non-extensible';
    var changed = verifyBuiltins();
    if (changed) tainted = changed;
  }

  function resetTraderState() {
    cleanGlobals();
    clearHVN();
    /(?:)/.exec(''); // reset RegExp legacy statics (RegExp.$1, lastMatch, input)
  }

  function describe(e) {
    try {
      var text;
      if (e instanceof Error) {
        text = String(e.name) + ': ' + String(e.message);
        var where = locate(e.stack);
        if (where) text += ' (' + where + ')';
      } else {
        text = 'thrown: ' + String(e);
      }
      return text.length > MAX_MESSAGE ? text.slice(0, MAX_MESSAGE) + '…' : text;
    } catch (inner) {
      return 'thrown: (unprintable value)';
    }
  }

  /** "line L, column C" of the innermost frame inside the filter body, if any. */
  function locate(stack) {
    if (typeof stack !== 'string') return '';
    var m = /\(eval at [^)]*\), <anonymous>:(\d+):(\d+)\)/.exec(stack);
    if (!m) return '';
    var line = Number(m[1]) - 3;
    return line >= 1 ? 'line ' + line + ', column ' + m[2] : '';
  }

  function compile(code) {
    return new FunctionCtor(
      'ticker',
      'timeframes',
      'helpers',
      'hvnNodes',
      'try {\n' + code + '\n} catch (e) { throw e; }',
    );
  }

  function pickHvnTf(tfs) {
    if (tfs.indexOf('1d') >= 0) return '1d';
    if (tfs.indexOf('4h') >= 0) return '4h';
    if (tfs.indexOf('1h') >= 0) return '1h';
    return tfs[0];
  }

  function copyRows(arr) {
    var out = new Array(arr.length);
    for (var i = 0; i < arr.length; i++) {
      var row = arr[i];
      out[i] = row !== null && typeof row === 'object' ? Array.prototype.slice.call(row) : row;
    }
    return out;
  }

  function copyTicker(t) {
    return Object.assign({}, t);
  }

  function typeName(v) {
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'array';
    return typeof v;
  }

  function hasHistory(sym) {
    for (var tf in series) if (hasOwn.call(series[tf], sym)) return true;
    return false;
  }

  /**
   * One trader over all symbols (§2b). `privateCopies` gives the filter unfrozen copies
   * of its inputs: used to re-run a trader whose code mutates the shared data.
   */
  function evaluate(fn, tfs, symbols, useMemo, privateCopies, wantTypes) {
    var ns = useMemo && !privateCopies ? nsMemo : nsRaw;
    var hvn = useMemo && !privateCopies ? hvnMemo : hvnRaw;
    var hvnTf = pickHvnTf(tfs);
    var matches = [];
    var errors = [];
    var types = wantTypes ? {} : null;
    var evaluated = 0;
    var frozenWrite = false;
    for (var s = 0; s < symbols.length; s++) {
      var sym = symbols[s];
      var ticker = hasOwn.call(tickers, sym) ? tickers[sym] : undefined;
      if (!ticker || !hasHistory(sym)) continue;
      var timeframes = {};
      var skip = false;
      for (var t = 0; t < tfs.length; t++) {
        var tf = tfs[t];
        var byTf = series[tf];
        var kl = byTf !== undefined && hasOwn.call(byTf, sym) ? klinesOf(tf, byTf, sym) : undefined;
        if (!kl || kl.length < MIN_KLINES) {
          skip = true;
          break;
        }
        timeframes[tf] = privateCopies ? copyRows(kl) : traderCopy(kl);
      }
      if (skip) continue;
      if (privateCopies) ticker = copyTicker(ticker);
      evaluated++;
      var hvnNodes;
      try {
        var base = timeframes[hvnTf];
        hvnNodes = hvn(base, { lookback: Math.min(base.length, 100) });
      } catch (e1) {
        errors.push({ symbol: sym, message: 'hvnNodes: ' + describe(e1) });
        continue;
      }
      var result;
      try {
        result = fn(ticker, timeframes, ns, hvnNodes);
      } catch (e2) {
        if (!privateCopies && e2 instanceof TypeError && FROZEN_WRITE.test(String(e2.message))) {
          frozenWrite = true;
        }
        errors.push({ symbol: sym, message: describe(e2) });
        continue;
      }
      if (types !== null && typeof result !== 'boolean') {
        var tn = typeName(result);
        types[tn] = (types[tn] || 0) + 1;
      }
      if (result) matches.push(sym);
    }
    return { matches: matches, errors: errors, evaluated: evaluated, types: types, frozenWrite: frozenWrite };
  }

  function runOne(req, symbols, batchOptions) {
    var started = dateNow();
    resetTraderState();
    var refreshInterval = req.refreshInterval || '1m';
    var tfs = req.requiredTimeframes;
    if (tfs === null || tfs === undefined) tfs = [refreshInterval || '1m'];
    var fn;
    try {
      fn = compile(typeof req.code === 'string' ? req.code : String(req.code));
    } catch (e) {
      return { traderId: req.traderId, ok: false, kind: e instanceof SyntaxError ? 'syntax' : 'runtime', message: describe(e), durationMs: dateNow() - started };
    }
    var useMemo = batchOptions.memo !== false;
    var out = evaluate(fn, tfs, symbols, useMemo, false, !!batchOptions.returnTypes);
    var privateCopies = false;
    if (out.frozenWrite) {
      // The filter mutated the shared snapshot (which threw). Re-run it from scratch on
      // private, unfrozen copies, which is what it saw in the browser.
      resetTraderState();
      fn = compile(req.code);
      out = evaluate(fn, tfs, symbols, useMemo, true, !!batchOptions.returnTypes);
      privateCopies = true;
    }
    resetTraderState();
    return {
      traderId: req.traderId,
      ok: true,
      matches: out.matches,
      errors: out.errors,
      evaluated: out.evaluated,
      returnTypes: out.types,
      privateCopies: privateCopies,
      durationMs: dateNow() - started,
    };
  }

  // --- batches -----------------------------------------------------------------------
  var progress = new Int32Array(new SAB(8)); // [batch sequence, index of running trader]
  var completed = [];

  /**
   * Parse every (timeframe, symbol) a batch will read. Python calls this outside the
   * per-trader watchdog, so parsing our own snapshot never counts against a trader's time
   * budget (the first trader after a new version would otherwise pay for everyone).
   */
  function warm(t, requestJson) {
    checkToken(t);
    var request = jsonParse(requestJson);
    var traders = request.traders;
    var lists = request.symbolLists;
    var parsed = 0;
    for (var i = 0; i < traders.length; i++) {
      var req = traders[i];
      var tfs = req.requiredTimeframes;
      if (tfs === null || tfs === undefined) tfs = [req.refreshInterval || '1m'];
      if (!Array.isArray(tfs)) continue;
      var symbols = lists[req.symbols] || [];
      for (var k = 0; k < tfs.length; k++) {
        var tf = tfs[k];
        var byTf = hasOwn.call(series, tf) ? series[tf] : undefined;
        if (byTf === undefined) continue;
        for (var s = 0; s < symbols.length; s++) {
          var sym = symbols[s];
          if (hasOwn.call(byTf, sym) && byTf[sym] === PENDING) {
            klinesOf(tf, byTf, sym);
            parsed++;
          }
        }
      }
    }
    return parsed;
  }

  function runBatch(t, requestJson) {
    checkToken(t);
    var request = jsonParse(requestJson);
    var traders = request.traders;
    var lists = request.symbolLists;
    var batchOptions = request.options || {};
    completed = [];
    atomicsStore(progress, 1, -1);
    atomicsStore(progress, 0, request.seq);
    for (var i = 0; i < traders.length; i++) {
      atomicsStore(progress, 1, i);
      completed.push(runOne(traders[i], lists[traders[i].symbols], batchOptions));
      // An undoable change to the global object: stop so Python can replace the isolate
      // before anyone else runs in it.
      if (tainted) break;
    }
    atomicsStore(progress, 1, traders.length);
    return jsonStringify({ results: completed, tainted: tainted });
  }

  return freeze({
    progressBuffer: function (t) {
      checkToken(t);
      return progress.buffer;
    },
    setTickers: function (t, version, json) {
      checkToken(t);
      tickers = freezeTickers(jsonParse(json));
      versions.tickers = version;
      return Object.keys(tickers).length;
    },
    setSeries: function (t, interval, version, json) {
      checkToken(t);
      var map = lazySeriesMap(interval, json);
      forget(series[interval]);
      series[interval] = map;
      versions['series:' + interval] = version;
      return Object.keys(map).length;
    },
    dropSeries: function (t, interval) {
      checkToken(t);
      forget(series[interval]);
      delete series[interval];
      delete pendingText[interval];
      delete versions['series:' + interval];
      return true;
    },
    warm: warm,
    runBatch: runBatch,
    collect: function (t) {
      checkToken(t);
      resetTraderState();
      return jsonStringify({ results: completed, tainted: tainted });
    },
    stats: function (t) {
      checkToken(t);
      return jsonStringify({ memo: memo.stats(), versions: versions, helpers: helperNames });
    },
  });
});
