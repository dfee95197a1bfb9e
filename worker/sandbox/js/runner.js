/*
 * The trader runner inside the sandbox isolate: it holds the frozen market snapshot and
 * evaluates traders over it exactly as the browser worker did (docs/sandbox.md).
 *
 * Why it is shaped like this:
 * - Snapshot data is parsed once per version (JSON.parse); rows and tickers are frozen, so
 *   every trader reads the same objects (as in the browser) but none can change them.
 * - Every built-in is frozen by harden.js before any tenant code runs, and this file calls
 *   built-ins only through "primordials" captured at start (e.g. ArrayPrototypePush), so no
 *   object a filter can reach sits on the runner's or the memo's call paths.
 * - One V8 call per trader (`runTrader`), or a group of them (`runGroup`, below). V8 runs
 *   the Promise jobs a trader queued right after its call, so the call for the next trader
 *   first settles the previous one (deletes the globals it and its jobs created); a progress
 *   word in memory Python reads while the call runs tells the watchdog whose time and memory
 *   it is (the previous trader's jobs, or this trader). The batch ends with one settle-only
 *   call for the last trader.
 * - Entry points require a secret token, so filter code that finds `__traderctl` cannot
 *   load data or start runs; the entry object and everything reachable from it is frozen.
 *
 * This file is one function expression; worker/sandbox/isolate.py calls it with the token,
 * the helpers object, harden.js and memo.js.
 */
(function makeRunner(token, rawHelpers, makeHardener, makeMemo, options) {
  'use strict';

  var globalObj = globalThis;
  // The global `helpers` binding of the loaded bundle is no longer needed by anyone.
  if (Object.prototype.hasOwnProperty.call(globalObj, 'helpers')) globalObj.helpers = undefined;
  var hardener = makeHardener(globalObj);

  // --- primordials: captured before any tenant code, intrinsics frozen by now -------------
  var uncurry = Function.prototype.bind.bind(Function.prototype.call);
  var jsonParse = JSON.parse;
  var jsonStringify = JSON.stringify;
  var freeze = Object.freeze;
  var objectKeys = Object.keys;
  var objectCreate = Object.create;
  var defineProperty = Object.defineProperty;
  var hasOwn = uncurry(Object.prototype.hasOwnProperty);
  var isArray = Array.isArray;
  var getOwnPropertyDescriptor = Reflect.getOwnPropertyDescriptor;
  var SymbolPrototypeToString = uncurry(Symbol.prototype.toString);
  var dateNow = Date.now;
  var mathMin = Math.min;
  var FunctionCtor = Function;
  var ArrayCtor = Array;
  var StringCtor = String;
  var ErrorCtor = Error;
  var TypeErrorCtor = TypeError;
  var SyntaxErrorCtor = SyntaxError;
  var ArrayPrototypePush = uncurry(Array.prototype.push);
  var ArrayPrototypeIndexOf = uncurry(Array.prototype.indexOf);
  var ArrayPrototypeSort = uncurry(Array.prototype.sort);
  var ArrayPrototypeSlice = uncurry(Array.prototype.slice);
  var StringPrototypeSlice = uncurry(String.prototype.slice);
  var StringPrototypeSubstring = uncurry(String.prototype.substring);
  var StringPrototypeCharCodeAt = uncurry(String.prototype.charCodeAt);
  var StringPrototypeToWellFormed = String.prototype.toWellFormed ? uncurry(String.prototype.toWellFormed) : null;
  var RegExpPrototypeExec = uncurry(RegExp.prototype.exec);
  var ObjectPrototypeIsPrototypeOf = uncurry(Object.prototype.isPrototypeOf);
  var ErrorPrototype = Error.prototype;
  var TypeErrorPrototype = TypeError.prototype;
  var SyntaxErrorPrototype = SyntaxError.prototype;
  var MIN_KLINES = 30;
  var MAX_MESSAGE = 500;
  var FROZEN_WRITE = /read[- ]only|not extensible|Cannot (?:add|assign|delete|redefine|define)|frozen/;
  var STACK_FRAME = /\(eval at [^)]*\), <anonymous>:(\d+):(\d+)\)/;
  var EMPTY_RE = /(?:)/;
  var READS_HVN = /hvnNodes|arguments|eval|\\/;

  // --- helpers namespaces ------------------------------------------------------------
  var rawFns = objectCreate(null);
  var helperNames = ArrayPrototypeSort(objectKeys(rawHelpers));
  for (var h = 0; h < helperNames.length; h++) rawFns[helperNames[h]] = rawHelpers[helperNames[h]];
  var clearHVN = typeof rawFns.clearHVNCache === 'function' ? rawFns.clearHVNCache : function () {};
  var hvnRaw = rawFns.calculateHighVolumeNodes;
  var memo = makeMemo(rawFns, options.memoCells, hardener.arrayIntact);
  var memoFns = memo.memoized();

  /** A frozen module-namespace look-alike: null prototype, sorted keys, toStringTag. */
  function namespace(fns) {
    var ns = objectCreate(null);
    for (var i = 0; i < helperNames.length; i++) {
      defineProperty(ns, helperNames[i], {
        value: fns[helperNames[i]],
        writable: true,
        enumerable: true,
        configurable: false,
      });
    }
    defineProperty(ns, Symbol.toStringTag, { value: 'Module' });
    return ns;
  }
  var nsRaw = namespace(rawFns);
  var nsMemo = namespace(memoFns);

  // --- snapshot store ----------------------------------------------------------------
  var tickers = freeze(objectCreate(null));
  var series = objectCreate(null); // interval -> {SYM: Kline[] master, or PENDING}
  var versions = objectCreate(null);

  /*
   * The progress word: written here, read by Python's watchdog from another thread while a
   * call runs (the buffer's memory is handed to Python once, by `progressBuffer`). The call
   * for trader i writes 2i+1 when it starts (the previous trader's Promise jobs are done)
   * and 2i+2 once the previous trader is settled and trader i's own time begins (the
   * settle-only call at the end of a batch never writes its 2i+2). Closed over: no filter
   * can reach it.
   */
  var progressBuffer = new ArrayBuffer(8);
  var progress = new Int32Array(progressBuffer);

  /*
   * Where Python leaves each batch's request text before calling `beginBatch`: mini-racer
   * stores it as a value, so no script is compiled from it. (When the request was part of
   * the call's source, every batch was a script with a source of its own, and V8 kept each
   * in its compilation cache: ~80 KB per batch of 32, over 100 MB after 50,000 runs.) Closed
   * over and handed to Python only (`inbox`); no prototype, so storing into it runs no
   * setter.
   */
  var inbox = objectCreate(null);

  function checkToken(t) {
    if (t !== token) throw new ErrorCtor('traderctl runner: bad token');
  }

  /*
   * Kline rows are frozen and shared by every trader. The outer arrays are NOT frozen: V8's
   * fast paths for slice/map/filter do not apply to frozen (or sealed) arrays (slice of 100
   * rows: 0.1 us -> 16 us), so the runner keeps these masters private and hands every
   * (trader, symbol) its own cheap copy (250 pointers). A filter may then reverse()/pop()/
   * push() its copy exactly as in the browser without affecting anyone.
   */
  function freezeSeries(arr) {
    if (!isArray(arr)) return arr;
    for (var j = 0; j < arr.length; j++) {
      var row = arr[j];
      if (row !== null && typeof row === 'object') freeze(row);
    }
    memo.register(arr);
    return arr;
  }

  /*
   * Series are parsed lazily, per symbol. JSON.parse of a whole snapshot (100 symbols x 6
   * timeframes x 250 klines, 22 MB) takes ~320 ms in V8 here; a scan that only finds where
   * each symbol's array starts and ends takes a few ms. `beginBatch` parses what a batch
   * will read before any trader runs; symbols nobody evaluates are never parsed.
   */
  var PENDING = freeze(objectCreate(null));
  var pendingText = objectCreate(null); // interval -> {text, spans: {symbol: [start, end]}}

  /**
   * {symbol: [start, end]} of each kline array in a compact JSON object text such as the
   * database builds ('{"BTCUSDT":[[...],...],"ETHUSDT":[[...]]}'), or null when the text
   * has another layout (whitespace, escaped keys, non-array values), which is then parsed
   * whole. A kline array only ever contains '],[' between rows, so '],"' followed by a key
   * and ':[' marks the next symbol.
   */
  var SYMBOL_KEY = /(?:^\{|\],)("[^"\\]*"):\[/g;

  function objectSpans(text) {
    var n = text.length;
    if (n < 2 || StringPrototypeCharCodeAt(text, 0) !== 123 /* { */ || StringPrototypeCharCodeAt(text, n - 1) !== 125) {
      return null;
    }
    var spans = objectCreate(null);
    if (n === 2) return spans;
    var key = null;
    var start = 0;
    var count = 0;
    SYMBOL_KEY.lastIndex = 0;
    var m;
    while ((m = RegExpPrototypeExec(SYMBOL_KEY, text)) !== null) {
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
    if (StringPrototypeCharCodeAt(text, n - 2) !== 93 /* ] */ || objectKeys(spans).length !== count) return null;
    return spans;
  }

  /** A map {symbol: PENDING} over the text's symbols (eagerly parsed if it is unusual). */
  function lazySeriesMap(interval, text) {
    var spans = objectSpans(text);
    var map = objectCreate(null);
    if (spans === null) {
      // Not a plain object text: parse it whole, which also reports any syntax error.
      var parsed = jsonParse(text);
      var keys = objectKeys(parsed);
      for (var k = 0; k < keys.length; k++) map[keys[k]] = freezeSeries(parsed[keys[k]]);
      delete pendingText[interval];
      return map;
    }
    var syms = objectKeys(spans);
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
      parsed = jsonParse(StringPrototypeSubstring(pending.text, span[0], span[1]));
    } catch (e) {
      // The split was wrong for this text after all: fall back to the whole text.
      parsed = jsonParse(pending.text)[sym];
    }
    kl = freezeSeries(parsed);
    byTf[sym] = kl;
    return kl;
  }

  /** A copy of an array that consults no constructor or species lookup. */
  function copyArray(a) {
    var out = [];
    for (var i = 0; i < a.length; i++) ArrayPrototypePush(out, a[i]);
    return out;
  }

  /**
   * The trader's own copy of a master series (the memo finds the master again by its rows).
   * `fast`: Array.prototype.constructor is as at startup and no filter code ran since that
   * was checked, so `slice` (which looks it up for species) only consults the frozen Array;
   * it is ~20x faster than a loop here (element stores take a slower path once the
   * prototypes' properties are read-only).
   */
  function traderCopy(master, fast) {
    return fast ? ArrayPrototypeSlice(master) : copyArray(master);
  }

  function freezeTickers(parsed) {
    var map = objectCreate(null);
    var syms = objectKeys(parsed);
    for (var i = 0; i < syms.length; i++) {
      var t = parsed[syms[i]];
      if (t !== null && typeof t === 'object') freeze(t);
      map[syms[i]] = t;
    }
    return freeze(map);
  }

  /** Release the memo entries of a replaced interval's arrays. */
  function forget(map) {
    if (map === undefined) return;
    var syms = objectKeys(map);
    for (var i = 0; i < syms.length; i++) memo.drop(map[syms[i]]);
  }

  // --- per-trader isolation ----------------------------------------------------------
  function resetTraderState() {
    clearHVN();
    RegExpPrototypeExec(EMPTY_RE, ''); // reset RegExp legacy statics (RegExp.$1, input...)
  }

  /** `text` cut to at most `max` UTF-16 units without splitting a surrogate pair. */
  function cut(text, max) {
    if (StringPrototypeToWellFormed !== null) text = StringPrototypeToWellFormed(text);
    if (text.length <= max) return text;
    var end = max;
    var last = StringPrototypeCharCodeAt(text, end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--; // a high surrogate: keep the pair whole
    return StringPrototypeSlice(text, 0, end) + '\u2026';
  }

  function isA(proto, value) {
    return value !== null && (typeof value === 'object' || typeof value === 'function') &&
      ObjectPrototypeIsPrototypeOf(proto, value);
  }

  /**
   * A readable message for anything a filter threw. Never throws: every read of the thrown
   * value (which may be a revoked Proxy, or have throwing getters or toString) is guarded.
   */
  function describe(e) {
    try {
      var text;
      if (isA(ErrorPrototype, e)) {
        text = StringCtor(e.name) + ': ' + StringCtor(e.message);
        var where = locate(e.stack);
        if (where) text += ' (' + where + ')';
      } else if (typeof e === 'symbol') {
        text = 'thrown: ' + SymbolPrototypeToString(e);
      } else {
        text = 'thrown: ' + StringCtor(e);
      }
      return cut(text, MAX_MESSAGE);
    } catch (inner) {
      return 'thrown: (unprintable value)';
    }
  }

  /** "line L, column C" of the innermost frame inside the filter body, if any. */
  function locate(stack) {
    if (typeof stack !== 'string') return '';
    var m = RegExpPrototypeExec(STACK_FRAME, stack);
    if (!m) return '';
    var line = +m[1] - 3;
    return line >= 1 ? 'line ' + line + ', column ' + m[2] : '';
  }

  /** Whether the throw is V8's complaint about writing to a frozen object (ours). */
  function isFrozenWrite(e) {
    try {
      if (!isA(TypeErrorPrototype, e)) return false;
      var d = getOwnPropertyDescriptor(e, 'message');
      return d !== undefined && typeof d.value === 'string' && RegExpPrototypeExec(FROZEN_WRITE, d.value) !== null;
    } catch (inner) {
      return false;
    }
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

  /**
   * Whether filter code can read its fourth parameter: by name (also spelled with an escape,
   * `hvn\u004Eodes`), through `arguments`, or in a direct `eval`. Code that contains none of
   * `hvnNodes`, `arguments`, `eval` and no backslash cannot name it, so its pre-pass result
   * is never copied out for it (it gets `undefined`; only reflection on the running
   * function, `f.caller['argu' + 'ments']`, could tell, and it only changes its own result).
   */
  function readsHvnNodes(code) {
    return typeof code !== 'string' || RegExpPrototypeExec(READS_HVN, code) !== null;
  }

  function pickHvnTf(tfs) {
    if (ArrayPrototypeIndexOf(tfs, '1d') >= 0) return '1d';
    if (ArrayPrototypeIndexOf(tfs, '4h') >= 0) return '4h';
    if (ArrayPrototypeIndexOf(tfs, '1h') >= 0) return '1h';
    return tfs[0];
  }

  function copyRows(arr) {
    var out = new ArrayCtor(arr.length);
    for (var i = 0; i < arr.length; i++) {
      var row = arr[i];
      out[i] = row !== null && typeof row === 'object' ? copyArray(row) : row;
    }
    return out;
  }

  function copyTicker(t) {
    var out = {};
    var keys = objectKeys(t);
    for (var i = 0; i < keys.length; i++) defineProperty(out, keys[i], { value: t[keys[i]], writable: true, enumerable: true, configurable: true });
    return out;
  }

  /** The type name counted for non-boolean returns; never throws (revoked proxies). */
  function typeName(v) {
    if (v === null) return 'null';
    try {
      if (isArray(v)) return 'array';
    } catch (e) {
      return 'object';
    }
    return typeof v;
  }

  function hasHistory(sym) {
    var tfs = objectKeys(series);
    for (var i = 0; i < tfs.length; i++) if (hasOwn(series[tfs[i]], sym)) return true;
    return false;
  }

  /**
   * One trader over all symbols. `privateCopies` gives the filter unfrozen copies of its
   * inputs: used to re-run a trader whose code mutates the shared rows or tickers.
   * `readsHvn`: the code can read hvnNodes (`readsHvnNodes`); if not, with the memo, the
   * pre-pass is only checked to succeed (a throw still skips the symbol), not copied.
   */
  function evaluate(fn, tfs, symbols, useMemo, privateCopies, wantTypes, readsHvn) {
    var shared = useMemo && !privateCopies;
    var ns = shared ? nsMemo : nsRaw;
    var hvnAt = ArrayPrototypeIndexOf(tfs, pickHvnTf(tfs));
    var matches = [];
    var errors = [];
    var types = wantTypes ? objectCreate(null) : null;
    var evaluated = 0;
    var frozenWrite = false;
    var byTfs = [];
    for (var b = 0; b < tfs.length; b++) {
      ArrayPrototypePush(byTfs, hasOwn(series, tfs[b]) ? series[tfs[b]] : undefined);
    }
    for (var s = 0; s < symbols.length; s++) {
      var sym = symbols[s];
      var ticker = hasOwn(tickers, sym) ? tickers[sym] : undefined;
      // With timeframes, the loop below skips a symbol without history in any of them.
      if (!ticker || (tfs.length === 0 && !hasHistory(sym))) continue;
      var timeframes = {};
      var base = undefined; // the master series of the hvnNodes timeframe
      var skip = false;
      // Filter code ran since the last symbol: check once, before this symbol's copies.
      var fast = !privateCopies && hardener.arrayIntact();
      for (var t = 0; t < tfs.length; t++) {
        var tf = tfs[t];
        var byTf = byTfs[t];
        var kl = byTf !== undefined && hasOwn(byTf, sym) ? byTf[sym] : undefined;
        if (kl === PENDING) kl = klinesOf(tf, byTf, sym);
        if (!kl || kl.length < MIN_KLINES) {
          skip = true;
          break;
        }
        if (t === hvnAt) base = kl;
        // A plain store is a define here: `tf` names a loaded interval (never '__proto__')
        // and Object.prototype is locked, so no setter can be reached.
        timeframes[tf] = privateCopies ? copyRows(kl) : traderCopy(kl, fast);
      }
      if (skip) continue;
      if (privateCopies) ticker = copyTicker(ticker);
      evaluated++;
      var hvnNodes;
      try {
        if (base === undefined) throw new TypeErrorCtor("Cannot read properties of undefined (reading 'length')");
        var lookback = mathMin(base.length, 100);
        if (!shared) hvnNodes = hvnRaw(copyArray(base), { lookback: lookback });
        else if (readsHvn) hvnNodes = memo.prepass(base, lookback, fast);
        else hvnNodes = memo.prepassChecked(base, lookback, fast);
      } catch (e1) {
        ArrayPrototypePush(errors, { symbol: sym, message: 'hvnNodes: ' + describe(e1) });
        continue;
      }
      var matched = false;
      try {
        var result = fn(ticker, timeframes, ns, hvnNodes);
        if (types !== null && typeof result !== 'boolean') {
          var tn = typeName(result);
          types[tn] = (types[tn] || 0) + 1;
        }
        matched = !!result;
      } catch (e2) {
        if (!privateCopies && isFrozenWrite(e2)) frozenWrite = true;
        ArrayPrototypePush(errors, { symbol: sym, message: describe(e2) });
        continue;
      }
      if (matched) ArrayPrototypePush(matches, sym);
    }
    return { matches: matches, errors: errors, evaluated: evaluated, types: types, frozenWrite: frozenWrite };
  }

  function runOne(req, symbols, batchOptions) {
    var started = dateNow();
    // Before the reset below: its RegExp match must not show in the filter's RegExp.$1.
    var readsHvn = readsHvnNodes(req.code);
    resetTraderState();
    var refreshInterval = req.refreshInterval || '1m';
    var tfs = req.requiredTimeframes;
    if (tfs === null || tfs === undefined) tfs = [refreshInterval || '1m'];
    var fn;
    try {
      fn = compile(req.code);
    } catch (e) {
      return { ok: false, kind: isA(SyntaxErrorPrototype, e) ? 'syntax' : 'runtime', message: describe(e), durationMs: dateNow() - started };
    }
    var useMemo = batchOptions.memo !== false;
    var wantTypes = !!batchOptions.returnTypes;
    var out = evaluate(fn, tfs, symbols, useMemo, false, wantTypes, readsHvn);
    var privateCopies = false;
    if (out.frozenWrite) {
      // The filter mutated the shared snapshot (which threw). Re-run it from scratch on
      // private, unfrozen copies, which is what it saw in the browser.
      hardener.resetGlobals();
      resetTraderState();
      out = evaluate(compile(req.code), tfs, symbols, useMemo, true, wantTypes, readsHvn);
      privateCopies = true;
    }
    return {
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
  var batch = null;

  /**
   * Take a batch request and parse every (timeframe, symbol) it will read. Python calls this
   * before the first trader, so parsing our own snapshot never counts against a trader.
   */
  function beginBatch(t) {
    checkToken(t);
    var requestJson = inbox.request;
    inbox.request = undefined;
    if (typeof requestJson !== 'string') throw new ErrorCtor('traderctl runner: no batch request');
    var request = jsonParse(requestJson);
    batch = request;
    progress[0] = 0;
    progress[1] = 0;
    var traders = request.traders;
    var lists = request.symbolLists;
    var parsed = 0;
    for (var i = 0; i < traders.length; i++) {
      var req = traders[i];
      var tfs = req.requiredTimeframes;
      if (tfs === null || tfs === undefined) tfs = [req.refreshInterval || '1m'];
      if (!isArray(tfs)) continue;
      var symbols = lists[req.symbols] || [];
      for (var k = 0; k < tfs.length; k++) {
        var tf = tfs[k];
        var byTf = hasOwn(series, tf) ? series[tf] : undefined;
        if (byTf === undefined) continue;
        for (var s = 0; s < symbols.length; s++) {
          var sym = symbols[s];
          if (hasOwn(byTf, sym) && byTf[sym] === PENDING) {
            klinesOf(tf, byTf, sym);
            parsed++;
          }
        }
      }
    }
    return parsed;
  }

  /**
   * Settle trader `index - 1` (its Promise jobs have run by now), then run trader `index` of
   * the current batch. Returns JSON text {left, result}: `left` is '' or what the previous
   * trader left behind that cannot be undone (trader `index` is then not run); `result` is
   * trader `index`'s result (null for index == number of traders: settling only).
   */
  function runTrader(t, index) {
    checkToken(t);
    progress[1] = 0;
    progress[0] = 2 * index + 1;
    if (index > 0) {
      var left = settleNow();
      if (left !== '') return jsonStringify({ left: left, result: null });
    }
    if (index >= batch.traders.length) return jsonStringify({ left: '', result: null });
    progress[0] = 2 * index + 2;
    var req = batch.traders[index];
    var result = runOne(req, batch.symbolLists[req.symbols], batch.options || {});
    return jsonStringify({ left: '', result: result });
  }

  /** Delete the globals the last trader created and reset per-trader state. */
  function settleNow() {
    resetTraderState();
    return hardener.resetGlobals();
  }

  /**
   * Traders `from` .. `to - 1` of the current batch in one call (group mode; docs/sandbox.md
   * "Groups"). Each trader is settled right after it ran, so the next one starts from the
   * globals as at startup. The Promise jobs they queue run only after this call returns,
   * all together: progress[1] = 1 marks that phase, whose time and memory Python cannot
   * place on one trader, so an overrun there makes it run the group again one trader per
   * call. Returns JSON text {left, at, results}: `left` is '' or what trader `at` left behind
   * (`at` < `from`: the previous group's Promise jobs did; otherwise trader `at`'s own code,
   * as no Promise job of this group has run yet); `results` are those of the traders run.
   * `from` == `to` only settles the previous group.
   */
  function runGroup(t, from, to) {
    checkToken(t);
    progress[1] = 0;
    var out = [];
    for (var i = from; i < to; i++) {
      progress[0] = 2 * i + 1;
      var left = settleNow();
      if (left !== '') return jsonStringify({ left: left, at: i - 1, results: out });
      progress[0] = 2 * i + 2;
      var req = batch.traders[i];
      ArrayPrototypePush(out, runOne(req, batch.symbolLists[req.symbols], batch.options || {}));
    }
    progress[0] = 2 * to + 1;
    var last = settleNow();
    progress[1] = 1;
    return jsonStringify({ left: last, at: to - 1, results: out });
  }

  /**
   * Settle after a stopped trader (its leftover Promise jobs have run by now). Returns ''
   * or what could not be undone.
   */
  function settle(t) {
    checkToken(t);
    return settleNow();
  }

  var api = freeze({
    setTickers: function (t, version, json) {
      checkToken(t);
      tickers = freezeTickers(jsonParse(json));
      versions.tickers = version;
      return objectKeys(tickers).length;
    },
    setSeries: function (t, interval, version, json) {
      checkToken(t);
      var map = lazySeriesMap(interval, json);
      forget(series[interval]);
      series[interval] = map;
      versions['series:' + interval] = version;
      return objectKeys(map).length;
    },
    dropSeries: function (t, interval) {
      checkToken(t);
      forget(series[interval]);
      delete series[interval];
      delete pendingText[interval];
      delete versions['series:' + interval];
      return true;
    },
    progressBuffer: function (t) {
      checkToken(t);
      return progressBuffer;
    },
    inbox: function (t) {
      checkToken(t);
      return inbox;
    },
    beginBatch: beginBatch,
    runTrader: runTrader,
    runGroup: runGroup,
    settle: settle,
    stats: function (t) {
      checkToken(t);
      return jsonStringify({ memo: memo.stats(), versions: versions, helpers: helperNames });
    },
  });

  // Everything a filter can reach from here on is frozen: the helpers (raw and memoized),
  // the namespaces and this entry object with its functions.
  hardener.harden([nsRaw, nsMemo, rawHelpers, api, PENDING]);
  return api;
});
