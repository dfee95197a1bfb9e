/*
 * Memoization of pure helper results across traders within one snapshot version.
 *
 * Why: a worker evaluates many traders against the same frozen snapshot, and most of them
 * compute the same indicators (RSI 14 on 1h, the worker's own HVN pre-pass on every
 * symbol...). Each result is computed once per (series, helper, arguments) and every caller
 * gets a fresh copy, so sharing never changes a result and a caller that mutates what it got
 * cannot affect anyone else.
 *
 * Safety rules (the memo is shared by every tenant, so nothing here trusts filter objects):
 * - Results are computed only from the runner's own master series, never from an object a
 *   filter holds: a filter's kline array only selects the master (it must still hold exactly
 *   the master's rows: same length, same row objects, Array prototype), and the helper then
 *   runs on a private copy of that master. A reversed/popped copy, a slice or a user-built
 *   array goes straight to the underlying helper, uncached.
 * - Only primitive arguments (and, for calculateHighVolumeNodes, a plain options object of
 *   primitive data properties without a truthy cacheKey) form a key; the helper receives the
 *   very primitives the key was built from (the options object is rebuilt), so an argument
 *   cannot read one way for the key and another way for the computation.
 * - Every result handed out is a fresh deep copy of the stored one (numbers arrays sliced,
 *   objects rebuilt). Only results made of primitives, plain arrays and plain objects are
 *   stored; anything else is computed again on the caller's own arguments and not stored.
 * - The store and its counters are closed over here and never reachable from filter code;
 *   every built-in the memo calls was captured before any tenant code ran.
 * - The store is dropped when it exceeds its cell budget (memory cap): that only costs
 *   recomputation.
 *
 * This file is one function expression; the runner calls it with the underlying helpers.
 */
(function makeMemo(raw, cellBudget, arrayIntact) {
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
  var uncurry = Function.prototype.bind.bind(Function.prototype.call);
  var OBJECT_PROTO = Object.prototype;
  var ARRAY_PROTO = Array.prototype;
  var objectKeys = Object.keys;
  var objectCreate = Object.create;
  var apply = Reflect.apply;
  var ownKeys = Reflect.ownKeys;
  var getDesc = Reflect.getOwnPropertyDescriptor;
  var getProto = Reflect.getPrototypeOf;
  var defineProperty = Object.defineProperty;
  var isArray = Array.isArray;
  var objectIs = Object.is;
  var stringify = JSON.stringify;
  var ArrayCtor = Array;
  var ArrayPrototypePush = uncurry(Array.prototype.push);
  var ArrayPrototypeSlice = uncurry(Array.prototype.slice);
  var ArrayPrototypeJoin = uncurry(Array.prototype.join);
  var ArrayPrototypeIndexOf = uncurry(Array.prototype.indexOf);
  var WeakSetHas = uncurry(WeakSet.prototype.has);
  var WeakSetAdd = uncurry(WeakSet.prototype.add);
  var WeakMapGet = uncurry(WeakMap.prototype.get);
  var WeakMapSet = uncurry(WeakMap.prototype.set);
  var WeakMapDelete = uncurry(WeakMap.prototype.delete);
  var MapGet = uncurry(Map.prototype.get);
  var MapSet = uncurry(Map.prototype.set);
  var WeakMapCtor = WeakMap;
  var FunctionCtor = Function;

  /** A copy of an array that consults no constructor or species lookup. */
  function copyArray(a) {
    var out = [];
    for (var i = 0; i < a.length; i++) ArrayPrototypePush(out, a[i]);
    return out;
  }

  /*
   * Copies of arrays the memo owns (masters, stored results, a helper's fresh result).
   * `slice` is ~20x faster than any loop in the hardened isolate (element stores take a
   * slower path once the prototypes' properties are read-only), but it looks up
   * Array.prototype.constructor for species. `fast` says that key is exactly as at startup
   * (checked by the caller after the last point where filter code could run), so slice
   * then only consults the frozen Array; otherwise the loop copy is used.
   */
  function copyOwn(a, fast) {
    return fast ? ArrayPrototypeSlice(a) : copyArray(a);
  }
  var MapCtor = Map;

  var series = new WeakSet(); // registered master arrays (never given to filters)
  var byFirstRow = new WeakMap(); // a master's first row (frozen, in no other master) -> master
  var store = new WeakMap(); // master -> {entries: Map(key -> entry), cells}
  var cells = 0;
  var stats = { hits: 0, misses: 0, bypass: 0, resets: 0 };

  /**
   * Key part for one argument, or null when the argument cannot be part of a key. For the
   * HVN options object, `copyInto` receives the primitive values read (each read once).
   */
  function keyOf(v, copyInto) {
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
        if (copyInto === null || isArray(v) || getProto(v) !== OBJECT_PROTO) return null;
        var keys = ownKeys(v);
        var parts = [];
        for (var i = 0; i < keys.length; i++) {
          var name = keys[i];
          if (typeof name !== 'string') return null;
          var d = getDesc(v, name);
          if (d === undefined || !('value' in d)) return null;
          var value = d.value;
          if (name === 'cacheKey' && value) return null;
          var inner = keyOf(value, null);
          if (inner === null) return null;
          defineProperty(copyInto, name, { value: value, writable: true, enumerable: true, configurable: true });
          ArrayPrototypePush(parts, stringify(name) + ':' + inner);
        }
        return 'o{' + ArrayPrototypeJoin(parts, ',') + '}';
      default:
        return null;
    }
  }

  var NOT_PLAIN = {};
  var copiedCells = 0;

  /**
   * A deep copy of a helper result made of primitives, arrays and plain objects, counting
   * its cells in `copiedCells`; NOT_PLAIN for anything else (functions, class instances,
   * holes, deep nesting), which is then not stored. Its input is always a helper's fresh
   * result computed on our own master data, never a filter object.
   */
  function plainCopy(v, depth, fast) {
    copiedCells++;
    if (v === null || typeof v !== 'object') {
      return typeof v === 'function' || typeof v === 'symbol' ? NOT_PLAIN : v;
    }
    if (depth > 4) return NOT_PLAIN;
    var i;
    if (isArray(v)) {
      if (getProto(v) !== ARRAY_PROTO) return NOT_PLAIN;
      if (fast && isDenseNumbers(v)) {
        copiedCells += v.length;
        return ArrayPrototypeSlice(v);
      }
      var arr = new ArrayCtor(v.length);
      for (i = 0; i < v.length; i++) {
        var x = v[i];
        if (x === null || typeof x === 'number' || typeof x === 'string' || typeof x === 'boolean') {
          arr[i] = x;
          copiedCells++;
          continue;
        }
        if (x === undefined && !(i in v)) return NOT_PLAIN;
        var cx = plainCopy(x, depth + 1, fast);
        if (cx === NOT_PLAIN) return NOT_PLAIN;
        arr[i] = cx;
      }
      return arr;
    }
    if (getProto(v) !== OBJECT_PROTO) return NOT_PLAIN;
    var keys = objectKeys(v);
    var obj = {};
    for (i = 0; i < keys.length; i++) {
      var c = plainCopy(v[keys[i]], depth + 1, fast);
      if (c === NOT_PLAIN) return NOT_PLAIN;
      obj[keys[i]] = c;
    }
    return obj;
  }

  /** Whether every element of `v` is a primitive, with no holes (then slice copies it). */
  function isDenseNumbers(v) {
    for (var i = 0; i < v.length; i++) {
      var x = v[i];
      if (x !== null && typeof x !== 'number' && typeof x !== 'string' && typeof x !== 'boolean') {
        if (x !== undefined || !(i in v)) return false;
      }
    }
    return true;
  }

  function isPrimitiveArray(v) {
    for (var i = 0; i < v.length; i++) {
      var x = v[i];
      if (x !== null && typeof x === 'object') return false;
    }
    return true;
  }

  /** A fresh copy of a stored value (stored values are plain and never leave the memo). */
  function deepCopy(v, fast) {
    if (v === null || typeof v !== 'object') return v;
    var i;
    if (isArray(v)) {
      if (fast && isPrimitiveArray(v)) return ArrayPrototypeSlice(v);
      var arr = new ArrayCtor(v.length);
      for (i = 0; i < v.length; i++) {
        var x = v[i];
        arr[i] = x !== null && typeof x === 'object' ? deepCopy(x, fast) : x;
      }
      return arr;
    }
    var obj = {};
    var keys = objectKeys(v);
    for (i = 0; i < keys.length; i++) obj[keys[i]] = deepCopy(v[keys[i]], fast);
    return obj;
  }

  /*
   * Copiers compiled per result shape. Most stored results that are not a flat array have
   * one of a few fixed shapes (the hvnNodes pre-pass: an array of objects with the same six
   * keys, one of them a pair; MACD, Bollinger and stochastic objects of numbers or number
   * arrays), and every (trader, symbol) gets a copy of some of them. A copier written for
   * the shape (`{"price": x["price"], ...}` in a loop) builds the copy with object literals
   * instead of walking keys, ~5x faster than deepCopy. The shape comes from a stored value
   * (our own helper's result on our own master data, already reduced to plain data by
   * plainCopy), never from filter code; keys enter the source only as JSON string literals,
   * and a shape with a "__proto__" key (which a literal would turn into a prototype) is
   * copied by deepCopy instead.
   */
  var copiers = new MapCtor(); // shape signature -> compiled copier
  var copierCount = 0;
  var MAX_COPIERS = 64;

  /**
   * The shape signature of a plain stored value: 'p' primitive, 'A' array of primitives,
   * '{"k":S,...}' object, '[S]' non-empty array whose elements all have non-primitive shape
   * S; null when there is none (mixed arrays, a "__proto__" key).
   */
  function shapeOf(v) {
    if (v === null || typeof v !== 'object') return 'p';
    var i;
    if (isArray(v)) {
      if (v.length === 0 || isPrimitiveArray(v)) return 'A';
      var first = shapeOf(v[0]);
      if (first === null || first === 'p' || first === 'A') return null;
      for (i = 1; i < v.length; i++) if (shapeOf(v[i]) !== first) return null;
      return '[' + first + ']';
    }
    var keys = objectKeys(v);
    var parts = [];
    for (i = 0; i < keys.length; i++) {
      if (keys[i] === '__proto__') return null;
      var inner = shapeOf(v[keys[i]]);
      if (inner === null) return null;
      ArrayPrototypePush(parts, stringify(keys[i]) + ':' + inner);
    }
    return '{' + ArrayPrototypeJoin(parts, ',') + '}';
  }

  /** JavaScript source of a copier for `value` (whose signature is known), reading `expr`. */
  function copierSource(value, expr, fns) {
    if (value === null || typeof value !== 'object') return expr;
    if (isArray(value)) {
      if (value.length === 0 || isPrimitiveArray(value)) return 'slice(' + expr + ')';
      var element = copierSource(value[0], 'x[i]', fns); // inner copiers are listed first
      var name = 'f' + fns.length;
      ArrayPrototypePush(fns,
        'function ' + name + '(x) { var n = x.length, o = new Arr(n); ' +
        'for (var i = 0; i < n; i++) o[i] = ' + element + '; return o; }');
      return name + '(' + expr + ')';
    }
    var keys = objectKeys(value);
    var fields = [];
    for (var i = 0; i < keys.length; i++) {
      var key = stringify(keys[i]);
      ArrayPrototypePush(fields, key + ': ' + copierSource(value[keys[i]], expr + '[' + key + ']', fns));
    }
    return '{' + ArrayPrototypeJoin(fields, ', ') + '}';
  }

  /** The compiled copier for a stored value's shape, or null (deepCopy is used then). */
  function copierFor(value) {
    var shape = shapeOf(value);
    if (shape === null || shape === 'p' || shape === 'A') return null;
    var known = MapGet(copiers, shape);
    if (known !== undefined) return known;
    if (copierCount >= MAX_COPIERS) return null;
    var fns = [];
    var top = copierSource(value, 'v', fns);
    var source = "'use strict';\n" + ArrayPrototypeJoin(fns, '\n') + '\nreturn function (v) { return ' + top + '; };';
    var copier = new FunctionCtor('slice', 'Arr', source)(ArrayPrototypeSlice, ArrayCtor);
    MapSet(copiers, shape, copier);
    copierCount++;
    return copier;
  }

  // Entry kinds: 0 primitive, 1 array of primitives (slice), 2 anything else (deep copy),
  // 3 a shape with a compiled copier (`entry.copy`).
  function copyOut(entry, fast) {
    if (entry.kind === 0) return entry.value;
    if (entry.kind === 1) return copyOwn(entry.value, fast);
    if (entry.kind === 3 && fast) return entry.copy(entry.value);
    return deepCopy(entry.value, fast);
  }

  /**
   * The master whose rows `copy` holds exactly (same length, the very same row objects, in
   * order, Array prototype), or undefined. Rows are frozen objects that belong to exactly
   * one master, so the first row names the candidate and the rest must match it. Any array
   * that passes (the trader's own copy, or a full slice of it) reads the same as the master,
   * and the helper then runs on a private copy of the master, never on `copy`.
   */
  function masterOf(copy) {
    if (!isArray(copy) || getProto(copy) !== ARRAY_PROTO) return undefined;
    var n = copy.length;
    if (n === 0) return undefined;
    var first = copy[0];
    if (first === null || typeof first !== 'object') return undefined;
    var master = WeakMapGet(byFirstRow, first);
    if (master === undefined || master.length !== n) return undefined;
    for (var i = 1; i < n; i++) if (copy[i] !== master[i]) return undefined;
    return master;
  }

  /*
   * Where a result is stored, per master series. A call whose arguments after the series
   * are all primitives (nearly every call) is found through `tree`: one Map per argument
   * position, keyed by the argument itself, and the entry under END after the last one, so
   * a lookup builds no key text (building and hashing a key string per call was ~9 % of the
   * runner's time). Map keys compare with SameValueZero, which tells apart everything the
   * helpers can tell apart except -0 and +0: -0 is looked up as NEG_ZERO. END and
   * PREPASS are private objects, so they never equal an argument, and END makes calls
   * with fewer arguments (`f(k, 14)` against `f(k, 14, undefined)`) different paths. A
   * call with an options object (calculateHighVolumeNodes) is found in `byText` by the
   * key text keyOf builds.
   */
  var END = objectCreate(null);
  var NEG_ZERO = objectCreate(null);
  var PREPASS = objectCreate(null);

  function treeKey(v) {
    return v === 0 && 1 / v < 0 ? NEG_ZERO : v;
  }

  /** Whether `v` can be a `tree` key: a primitive the helpers may take as an argument. */
  function isKeyPrimitive(v) {
    var t = typeof v;
    return t === 'number' || t === 'string' || t === 'boolean' || v === undefined || v === null;
  }

  /** The entry of `name` at `text`, else at `path[from..]` (see storeEntry), or undefined. */
  function findEntry(perSeries, name, text, path, from) {
    if (text !== null) return MapGet(perSeries.byText, text);
    var node = MapGet(perSeries.tree, name);
    for (var i = from; node !== undefined && i < path.length; i++) node = MapGet(node, treeKey(path[i]));
    return node === undefined ? undefined : MapGet(node, END);
  }

  function childMap(map, key) {
    var child = MapGet(map, key);
    if (child === undefined) {
      child = new MapCtor();
      MapSet(map, key, child);
    }
    return child;
  }

  function storeEntry(perSeries, name, text, path, from, entry) {
    if (text !== null) {
      MapSet(perSeries.byText, text, entry);
      return;
    }
    var node = childMap(perSeries.tree, name);
    for (var i = from; i < path.length; i++) node = childMap(node, treeKey(path[i]));
    MapSet(node, END, entry);
  }

  /**
   * The stored (or newly computed) result of `name` on `master`, found by `text` when it is
   * not null, else by the primitives `path[from..]`. The helper's arguments after the series
   * are `args`, or `path[from..]` when `args` is null (a call with primitive arguments).
   * Returns a fresh copy, or NOT_PLAIN when the result cannot be stored (the caller then
   * computes it itself).
   */
  function fromMaster(name, fn, master, text, path, from, args) {
    // No filter code runs from here on (keys and arguments are primitives by now), so
    // Array.prototype's two writable keys are checked once: a helper must not run while
    // they differ from startup (it could call the filter's hook), so then nothing is used.
    if (!arrayIntact()) return NOT_PLAIN;
    var perSeries = WeakMapGet(store, master);
    if (perSeries !== undefined) {
      var hit = findEntry(perSeries, name, text, path, from);
      if (hit !== undefined) {
        stats.hits++;
        return copyOut(hit, true);
      }
    }
    stats.misses++;
    // The helper runs on a private copy of our master: no filter object is involved.
    var callArgs = [ArrayPrototypeSlice(master)];
    if (args === null) {
      for (var a = from; a < path.length; a++) ArrayPrototypePush(callArgs, path[a]);
    } else {
      for (var b = 0; b < args.length; b++) ArrayPrototypePush(callArgs, args[b]);
    }
    var result = apply(fn, undefined, callArgs);
    copiedCells = 0;
    var copy = plainCopy(result, 0, true);
    if (copy === NOT_PLAIN) return NOT_PLAIN;
    var kind = copy === null || typeof copy !== 'object' ? 0 : isArray(copy) && isPrimitiveArray(copy) ? 1 : 2;
    var copier = kind === 2 ? copierFor(copy) : null;
    var entry = { kind: copier === null ? kind : 3, value: copy, copy: copier };
    var size = copiedCells;
    if (cells + size > cellBudget) {
      store = new WeakMapCtor();
      cells = 0;
      stats.resets++;
      perSeries = undefined;
    }
    if (perSeries === undefined) {
      perSeries = { tree: new MapCtor(), byText: new MapCtor(), cells: 0, prepass: null, prepassLookback: -1 };
      WeakMapSet(store, master, perSeries);
    }
    storeEntry(perSeries, name, text, path, from, entry);
    perSeries.cells += size;
    cells += size;
    // The helper's own result goes to the caller: it was computed on a private copy of our
    // master and nothing else holds it (the store keeps the separate copy made above).
    return result;
  }

  /**
   * A memoized helper's call: `args` is the wrapper's own array of the caller's arguments
   * (the series first), so every value is read from it exactly once.
   */
  function lookup(name, fn, args) {
    var first = args[0];
    // While a filter has replaced Array.prototype.constructor or [Symbol.iterator] (it
    // fails for that afterwards), fromMaster computes nothing: a helper could call its hook.
    var master = first !== null && typeof first === 'object' ? masterOf(first) : undefined;
    if (master === undefined) {
      stats.bypass++;
      return apply(fn, undefined, args);
    }
    var primitives = true;
    for (var i = 1; i < args.length; i++) {
      if (!isKeyPrimitive(args[i])) {
        primitives = false;
        break;
      }
    }
    var out;
    if (primitives) {
      // Nearly every call: the arguments after the series are the path in the tree.
      out = fromMaster(name, fn, master, null, args, 1, null);
    } else {
      // An options object (or something no key can hold): the key text, built from the
      // primitives read once, and the helper gets a rebuilt object of those.
      var rest = [];
      var text = name;
      for (var j = 1; j < args.length; j++) {
        var options = name === 'calculateHighVolumeNodes' && j === 1 ? {} : null;
        var part = keyOf(args[j], options);
        if (part === null) {
          stats.bypass++;
          return apply(fn, undefined, args);
        }
        ArrayPrototypePush(rest, options !== null ? options : args[j]);
        text += '|' + part;
      }
      out = fromMaster(name, fn, master, text, null, 0, rest);
    }
    if (out === NOT_PLAIN) return apply(fn, undefined, args);
    return out;
  }

  function wrap(name, fn) {
    var wrapped = function (...args) {
      return lookup(name, fn, args);
    };
    defineProperty(wrapped, 'name', { value: name });
    return wrapped;
  }

  /** A copy of `raw` where the pure series helpers are memoized. */
  function memoized() {
    var out = {};
    var names = objectKeys(raw);
    for (var i = 0; i < names.length; i++) {
      var name = names[i];
      var fn = raw[name];
      out[name] = typeof fn === 'function' && ArrayPrototypeIndexOf(MEMO_NAMES, name) >= 0 ? wrap(name, fn) : fn;
    }
    return out;
  }

  var hvnRaw = raw.calculateHighVolumeNodes;

  /**
   * The stored pre-pass entry of `master` at `lookback`, counted as a hit, or undefined.
   * `intact`: the caller checked Array.prototype's two writable keys after the last filter
   * code ran, so a stored entry of this master (a registered series: only those are ever
   * stored) can be used at once.
   */
  function storedPrepass(master, lookback, intact) {
    if (!intact) return undefined;
    var perSeries = WeakMapGet(store, master);
    if (perSeries === undefined || perSeries.prepassLookback !== lookback) return undefined;
    stats.hits++;
    return perSeries.prepass;
  }

  /**
   * The runner's hvnNodes pre-pass on a registered master series: a fresh copy of
   * calculateHighVolumeNodes(master, {lookback}), computed once per series and lookback.
   */
  function prepass(master, lookback, intact) {
    var hit = storedPrepass(master, lookback, intact);
    if (hit !== undefined) return copyOut(hit, true);
    if (typeof hvnRaw !== 'function' || !WeakSetHas(series, master)) {
      return apply(hvnRaw, undefined, [copyArray(master), { lookback: lookback }]);
    }
    var path = [PREPASS, lookback];
    var out = fromMaster('calculateHighVolumeNodes', hvnRaw, master, null, path, 0, [{ lookback: lookback }]);
    if (out === NOT_PLAIN) return apply(hvnRaw, undefined, [copyArray(master), { lookback: lookback }]);
    // Once per series: keep the stored entry at hand for the hits above.
    var stored = WeakMapGet(store, master);
    var entry = stored === undefined ? undefined : findEntry(stored, 'calculateHighVolumeNodes', null, path, 0);
    if (entry !== undefined) {
      stored.prepass = entry;
      stored.prepassLookback = lookback;
    }
    return out;
  }

  return {
    memoized: memoized,
    prepass: prepass,
    /**
     * The pre-pass for a filter that cannot read hvnNodes (the runner's `readsHvnNodes`):
     * only whether it throws matters there (a throw skips the symbol), so a stored entry
     * is not copied. The filter gets `undefined`.
     */
    prepassChecked: function (master, lookback, intact) {
      if (storedPrepass(master, lookback, intact) === undefined) prepass(master, lookback, intact);
      return undefined;
    },
    /** Mark a snapshot array (rows frozen, array private to the runner) as memoizable. */
    register: function (arr) {
      WeakSetAdd(series, arr);
      var first = arr[0];
      if (first !== null && typeof first === 'object' && WeakMapGet(byFirstRow, first) === undefined) {
        WeakMapSet(byFirstRow, first, arr);
      }
    },
    /** Forget the results for one series (its interval was replaced). */
    drop: function (arr) {
      var perSeries = WeakMapGet(store, arr);
      if (perSeries === undefined) return;
      cells -= perSeries.cells;
      WeakMapDelete(store, arr);
    },
    stats: function () {
      return { hits: stats.hits, misses: stats.misses, bypass: stats.bypass, resets: stats.resets, cells: cells };
    },
  };
});
