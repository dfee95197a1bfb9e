/*
 * Memoization of pure helper results across traders within one snapshot version.
 *
 * Why: a worker evaluates many traders against the same frozen snapshot, and most of them
 * compute the same indicators (RSI 14 on 1h, the worker's own HVN pre-pass on every
 * symbol...). Each result is computed once per (series, helper, arguments) and every later
 * caller gets a private copy, so sharing never changes a result and a caller that mutates
 * what it got cannot affect anyone else.
 *
 * Safety rules:
 * - Only series registered by the runner are memoized. Their rows are frozen and the
 *   master arrays are never given to filters: each trader gets a copy, and a call is served
 *   from the memo only while that copy still holds exactly the master's rows (same length,
 *   same row objects, Array prototype). A reversed/popped copy, a slice or a user-built
 *   array goes straight to the underlying helper.
 * - Only primitive arguments (and, for calculateHighVolumeNodes, a plain options object of
 *   primitive data properties without a truthy cacheKey) form a key; anything else bypasses.
 * - Results are returned as fresh copies: arrays of numbers are sliced, objects and arrays of
 *   objects are rebuilt, so "every element is a separate object" still holds. Only results
 *   made of primitives, plain arrays and plain objects (own enumerable keys) are stored;
 *   anything else is returned uncached.
 * - The store is dropped when it exceeds its cell budget (memory cap), which only costs
 *   recomputation.
 *
 * This file is one function expression; the runner calls it with the underlying helpers.
 */
(function makeMemo(raw, cellBudget) {
  'use strict';

  var MEMO_NAMES = [
    'calculateMA', 'calculateMASeries', 'calculateAvgVolume', 'calculateRSI', 'getLatestRSI',
    'detectRSIDivergence', 'calculateStochRSI', 'getLatestStochRSI', 'calculateEMASeries',
    'getLatestEMA', 'calculateMACDValues', 'getLatestMACD', 'calculateADX',
    'calculateStochastic', 'getHighestHigh', 'getLowestLow', 'detectEngulfingPattern',
    'calculatePVISeries', 'getLatestPVI', 'calculateHighVolumeNodes',
    'calculateBollingerBands', 'getLatestBollingerBands', 'calculateVWAP',
    'calculateVWAPSeries', 'getLatestVWAP', 'calculateVWAPBands', 'getLatestVWAPBands',
  ];
  var OBJECT_PROTO = Object.prototype;
  var ARRAY_PROTO = Array.prototype;
  var objectKeys = Object.keys;
  var apply = Reflect.apply;
  var ownKeys = Reflect.ownKeys;
  var getDesc = Object.getOwnPropertyDescriptor;
  var getProto = Object.getPrototypeOf;
  var isArray = Array.isArray;
  var objectIs = Object.is;
  var stringify = JSON.stringify;

  var series = new WeakSet(); // registered master arrays (never given to filters)
  var aliases = new WeakMap(); // a trader's copy -> its master
  var store = new WeakMap();
  var cells = 0;
  var stats = { hits: 0, misses: 0, bypass: 0, resets: 0 };

  /** Key part for one argument, or null when the argument cannot be part of a key. */
  function keyOf(v, allowObject) {
    switch (typeof v) {
      case 'number':
        return objectIs(v, -0) ? 'n-0' : 'n' + v;
      case 'string':
        return 's' + stringify(v);
      case 'boolean':
        return v ? 'T' : 'F';
      case 'undefined':
        return 'u';
      case 'object':
        if (v === null) return 'l';
        if (!allowObject || isArray(v) || getProto(v) !== OBJECT_PROTO) return null;
        var keys = ownKeys(v);
        var parts = [];
        for (var i = 0; i < keys.length; i++) {
          var name = keys[i];
          if (typeof name !== 'string') return null;
          var d = getDesc(v, name);
          if (!('value' in d)) return null;
          if (name === 'cacheKey' && d.value) return null;
          var inner = keyOf(d.value, false);
          if (inner === null) return null;
          parts.push(stringify(name) + ':' + inner);
        }
        return 'o{' + parts.join(',') + '}';
      default:
        return null;
    }
  }

  var NOT_PLAIN = {};
  var copiedCells = 0;

  /**
   * A deep copy of a helper result made of primitives, arrays and plain objects, counting
   * its cells in `copiedCells`; NOT_PLAIN for anything else (functions, class instances,
   * holes, deep nesting), which is then returned uncached. One pass: the copy is what the
   * store keeps, so the caller still receives the helper's own fresh result.
   */
  function plainCopy(v, depth) {
    copiedCells++;
    if (v === null || typeof v !== 'object') {
      return typeof v === 'function' || typeof v === 'symbol' ? NOT_PLAIN : v;
    }
    if (depth > 4) return NOT_PLAIN;
    var i;
    if (isArray(v)) {
      if (getProto(v) !== ARRAY_PROTO) return NOT_PLAIN;
      var arr = new Array(v.length);
      for (i = 0; i < v.length; i++) {
        var x = v[i];
        if (x === null || typeof x === 'number' || typeof x === 'string' || typeof x === 'boolean') {
          arr[i] = x;
          copiedCells++;
          continue;
        }
        if (x === undefined && !(i in v)) return NOT_PLAIN;
        var cx = plainCopy(x, depth + 1);
        if (cx === NOT_PLAIN) return NOT_PLAIN;
        arr[i] = cx;
      }
      return arr;
    }
    if (getProto(v) !== OBJECT_PROTO) return NOT_PLAIN;
    var keys = objectKeys(v);
    var obj = {};
    for (i = 0; i < keys.length; i++) {
      var c = plainCopy(v[keys[i]], depth + 1);
      if (c === NOT_PLAIN) return NOT_PLAIN;
      obj[keys[i]] = c;
    }
    return obj;
  }

  function isPrimitiveArray(v) {
    for (var i = 0; i < v.length; i++) {
      var x = v[i];
      if (x !== null && typeof x === 'object') return false;
    }
    return true;
  }

  function deepCopy(v) {
    if (v === null || typeof v !== 'object') return v;
    var i;
    if (isArray(v)) {
      var arr = new Array(v.length);
      for (i = 0; i < v.length; i++) {
        var x = v[i];
        arr[i] = x !== null && typeof x === 'object' ? deepCopy(x) : x;
      }
      return arr;
    }
    var obj = {};
    var keys = objectKeys(v);
    for (i = 0; i < keys.length; i++) obj[keys[i]] = deepCopy(v[keys[i]]);
    return obj;
  }

  // Entry kinds: 0 primitive, 1 array of primitives (slice), 2 anything else (deep copy).
  function copyOut(entry) {
    if (entry.kind === 0) return entry.value;
    if (entry.kind === 1) return entry.value.slice();
    return deepCopy(entry.value);
  }

  /** The master behind a trader's copy, if the copy still holds exactly the master's rows. */
  function masterOf(copy) {
    var master = aliases.get(copy);
    if (master === undefined || copy.length !== master.length || getProto(copy) !== ARRAY_PROTO) {
      return undefined;
    }
    for (var i = 0; i < copy.length; i++) if (copy[i] !== master[i]) return undefined;
    return master;
  }

  function lookup(name, fn, args) {
    var first = args[0];
    var master = first !== null && typeof first === 'object' ? masterOf(first) : undefined;
    if (master === undefined) {
      stats.bypass++;
      return apply(fn, undefined, args);
    }
    var key = name;
    for (var i = 1; i < args.length; i++) {
      var part = keyOf(args[i], name === 'calculateHighVolumeNodes' && i === 1);
      if (part === null) {
        stats.bypass++;
        return apply(fn, undefined, args);
      }
      key += '|' + part;
    }
    var perSeries = store.get(master);
    if (perSeries !== undefined) {
      var hit = perSeries.entries.get(key);
      if (hit !== undefined) {
        stats.hits++;
        return copyOut(hit);
      }
    }
    stats.misses++;
    var result = apply(fn, undefined, args);
    copiedCells = 0;
    var copy = plainCopy(result, 0);
    if (copy === NOT_PLAIN) return result;
    var kind = copy === null || typeof copy !== 'object' ? 0 : isArray(copy) && isPrimitiveArray(copy) ? 1 : 2;
    var entry = { kind: kind, value: copy };
    var size = copiedCells;
    if (cells + size > cellBudget) {
      store = new WeakMap();
      cells = 0;
      stats.resets++;
      perSeries = undefined;
    }
    if (perSeries === undefined) {
      perSeries = { entries: new Map(), cells: 0 };
      store.set(master, perSeries);
    }
    perSeries.entries.set(key, entry);
    perSeries.cells += size;
    cells += size;
    return result;
  }

  function wrap(name, fn) {
    var wrapped = function () {
      var args = new Array(arguments.length);
      for (var i = 0; i < args.length; i++) args[i] = arguments[i];
      return lookup(name, fn, args);
    };
    Object.defineProperty(wrapped, 'name', { value: name });
    return wrapped;
  }

  /** A copy of `raw` where the pure series helpers are memoized. */
  function memoized() {
    var out = {};
    var names = Object.keys(raw);
    for (var i = 0; i < names.length; i++) {
      var name = names[i];
      var fn = raw[name];
      out[name] = typeof fn === 'function' && MEMO_NAMES.indexOf(name) >= 0 ? wrap(name, fn) : fn;
    }
    return out;
  }

  return {
    memoized: memoized,
    /** Mark a snapshot array (rows frozen, array private to the runner) as memoizable. */
    register: function (arr) {
      series.add(arr);
    },
    /** `copy` was made from registered `master` for one trader. */
    alias: function (copy, master) {
      if (series.has(master)) aliases.set(copy, master);
    },
    /** Forget the results for one series (its interval was replaced). */
    drop: function (arr) {
      var perSeries = store.get(arr);
      if (perSeries === undefined) return;
      cells -= perSeries.cells;
      store.delete(arr);
    },
    clear: function () {
      store = new WeakMap();
      cells = 0;
    },
    stats: function () {
      return { hits: stats.hits, misses: stats.misses, bypass: stats.bypass, resets: stats.resets, cells: cells };
    },
  };
});
