/*
 * Lock the JavaScript intrinsics of the sandbox isolate once, at startup.
 *
 * Why: many traders share one V8 context. If a filter could change a built-in
 * (`Array.prototype.map = ...`, `Object.prototype.x = 1`, `Math.max = ...`) every later
 * trader would compute with the changed built-in. Locking once costs nothing per trader,
 * whereas checking and restoring every built-in after each trader would cost time per run.
 *
 * Locking = no new properties, and every existing property read-only and non-configurable:
 * the same semantics as Object.freeze. Two V8 details shape how it is done:
 * - Object.freeze on Object.prototype / Array.prototype changes their elements kind, which
 *   disables fast paths (Bollinger/RSI micro-bench: 60 ms -> 177 ms). preventExtensions plus
 *   per-property attributes does not.
 * - V8 guards fast paths (slice/map/filter via Array[Symbol.species], spread via the array
 *   iterator, RegExp, Promise, Map/Set/String iteration) with "protectors" that are
 *   invalidated for the whole isolate when a watched property is redefined, even when only
 *   its attributes change (spread: 4 ms -> 215 ms). Those few HOT properties are therefore
 *   left as they are and instead verified after every trader (`verify()` below); a trader
 *   that changed one leaves the isolate tainted and it is replaced.
 *
 * It also removes the built-ins that let code run *later*, outside the trader-run that
 * created it (Atomics.waitAsync timers, WebAssembly async compilation, FinalizationRegistry
 * callbacks), and MiniRacer's own setTimeout shim.
 *
 * The "override mistake": assigning `obj.toString = f` fails silently when the inherited
 * Object.prototype.toString is read-only. For the handful of names that ordinary code
 * assigns on its own objects we install an accessor whose setter creates the own property,
 * so such assignments still work (docs/sandbox.md lists them).
 *
 * This file is one function expression returning {harden, verify}; the runner uses harden
 * for the helpers namespace and verify after each trader.
 */
(function lockdown(globalObj) {
  'use strict';

  var removed = ['FinalizationRegistry', 'WeakRef', 'WebAssembly', 'SharedArrayBuffer'];
  for (var r = 0; r < removed.length; r++) delete globalObj[removed[r]];
  delete Atomics.waitAsync;
  // MiniRacer declares these with `var`, so they cannot be deleted; make them undefined.
  var shims = ['setTimeout', 'clearTimeout', '__timer_manager'];
  for (var s = 0; s < shims.length; s++) {
    if (Object.prototype.hasOwnProperty.call(globalObj, shims[s])) {
      Object.defineProperty(globalObj, shims[s], { value: undefined, writable: false });
    }
  }

  function enable(proto, name) {
    var desc = Object.getOwnPropertyDescriptor(proto, name);
    if (!desc || !('value' in desc)) return;
    var value = desc.value;
    Object.defineProperty(proto, name, {
      get: function () {
        return value;
      },
      set: function (v) {
        if (this === proto) throw new TypeError('Cannot assign to read only property ' + name);
        // What an ordinary assignment would have done without the read-only prototype.
        Reflect.defineProperty(this, name, {
          value: v,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      },
      enumerable: desc.enumerable,
      configurable: false,
    });
  }
  var enablements = [
    [Object.prototype, ['toString', 'valueOf', 'toLocaleString', 'hasOwnProperty']],
    [Function.prototype, ['toString']],
    [Error.prototype, ['name', 'message', 'toString']],
  ];
  for (var e = 0; e < enablements.length; e++) {
    var names = enablements[e][1];
    for (var n = 0; n < names.length; n++) enable(enablements[e][0], names[n]);
  }

  var arrayIterProto = Object.getPrototypeOf([][Symbol.iterator]());
  var mapIterProto = Object.getPrototypeOf(new Map()[Symbol.iterator]());
  var setIterProto = Object.getPrototypeOf(new Set()[Symbol.iterator]());
  var stringIterProto = Object.getPrototypeOf(''[Symbol.iterator]());
  var typedArray = Object.getPrototypeOf(Int8Array);

  // Properties watched by V8 protectors or prototype-map checks: not redefined, verified.
  var hot = [
    [Array.prototype, ['constructor', Symbol.iterator]],
    [Array, [Symbol.species]],
    [arrayIterProto, ['next']],
    [typedArray.prototype, ['constructor', Symbol.iterator]],
    [typedArray, [Symbol.species]],
    [Promise.prototype, ['constructor', 'then']],
    [Promise, [Symbol.species, 'resolve']],
    [RegExp, [Symbol.species]],
    [RegExp.prototype, null], // every property: V8 checks the whole prototype's map
    [Map.prototype, [Symbol.iterator, 'entries', 'set']],
    [mapIterProto, ['next']],
    [Set.prototype, [Symbol.iterator, 'values', 'add']],
    [setIterProto, ['next']],
    [String.prototype, [Symbol.iterator]],
    [stringIterProto, ['next']],
  ];
  var hotKeys = new Map(); // object -> Set of keys, or null for "all keys"
  var watched = []; // [object, key, original descriptor]
  for (var h = 0; h < hot.length; h++) {
    var target = hot[h][0];
    var keysOf = hot[h][1] === null ? Reflect.ownKeys(target) : hot[h][1];
    hotKeys.set(target, hot[h][1] === null ? null : new Set(keysOf));
    for (var hk = 0; hk < keysOf.length; hk++) {
      watched.push([target, keysOf[hk], Object.getOwnPropertyDescriptor(target, keysOf[hk])]);
    }
  }

  function sameDescriptor(a, b) {
    if (a === undefined || b === undefined) return a === b;
    return (
      a.value === b.value &&
      a.get === b.get &&
      a.set === b.set &&
      a.writable === b.writable &&
      a.enumerable === b.enumerable &&
      a.configurable === b.configurable
    );
  }

  var regexpKeyCount = Reflect.ownKeys(RegExp.prototype).length;

  /** '' when every hot property is as at startup, else a description of the change. */
  function verify() {
    for (var i = 0; i < watched.length; i++) {
      var w = watched[i];
      if (!sameDescriptor(Object.getOwnPropertyDescriptor(w[0], w[1]), w[2])) {
        return 'a built-in was modified: ' + String(w[1]);
      }
    }
    if (!Object.isExtensible(RegExp.prototype) || Reflect.ownKeys(RegExp.prototype).length !== regexpKeyCount) {
      return 'RegExp.prototype was modified';
    }
    return '';
  }

  /** Object.freeze semantics without touching the hot properties (see header). */
  function lock(obj) {
    var skip = hotKeys.has(obj) ? hotKeys.get(obj) : undefined;
    if (skip === null) return; // RegExp.prototype: verified instead
    var keys = Reflect.ownKeys(obj);
    for (var i = 0; i < keys.length; i++) {
      if (skip !== undefined && skip.has(keys[i])) continue;
      var d = Object.getOwnPropertyDescriptor(obj, keys[i]);
      if (!d) continue;
      if ('value' in d) {
        if (d.writable || d.configurable) {
          Object.defineProperty(obj, keys[i], { writable: false, configurable: false });
        }
      } else if (d.configurable) {
        Object.defineProperty(obj, keys[i], { configurable: false });
      }
    }
    Object.preventExtensions(obj);
  }

  // Intrinsics that are not reachable as properties of the global object.
  var roots = [
    Object.getPrototypeOf(function* () {}),
    Object.getPrototypeOf(async function () {}),
    Object.getPrototypeOf(async function* () {}),
    arrayIterProto,
    mapIterProto,
    setIterProto,
    stringIterProto,
    Object.getPrototypeOf('a'.matchAll(/a/g)),
    Object.getPrototypeOf(globalObj),
  ];
  if (typeof Iterator === 'function') {
    roots.push(Object.getPrototypeOf([].values().map(function (x) { return x; })));
    roots.push(Object.getPrototypeOf(Iterator.from({ next: function () { return { done: true }; } })));
  }
  if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
    var segments = new Intl.Segmenter().segment('');
    roots.push(Object.getPrototypeOf(segments));
    roots.push(Object.getPrototypeOf(segments[Symbol.iterator]()));
  }
  var globalKeys = Reflect.ownKeys(globalObj);
  for (var g = 0; g < globalKeys.length; g++) {
    var gd = Object.getOwnPropertyDescriptor(globalObj, globalKeys[g]);
    if (gd.value !== globalObj) roots.push(gd.value, gd.get, gd.set);
  }

  var seen = new WeakSet();
  /** Lock everything reachable from `start` (own properties, accessors, prototypes). */
  function harden(start) {
    var stack = start.slice();
    while (stack.length > 0) {
      var obj = stack.pop();
      if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) continue;
      if (obj === globalObj || seen.has(obj)) continue;
      seen.add(obj);
      stack.push(Object.getPrototypeOf(obj));
      var keys = Reflect.ownKeys(obj);
      for (var k = 0; k < keys.length; k++) {
        var d = Object.getOwnPropertyDescriptor(obj, keys[k]);
        if (d) stack.push(d.value, d.get, d.set);
      }
      lock(obj);
    }
  }
  harden(roots);

  // The global object stays extensible (sloppy-mode filters create globals; the runner
  // deletes them after each trader), but its built-in bindings become read-only.
  for (var b = 0; b < globalKeys.length; b++) {
    var bd = Object.getOwnPropertyDescriptor(globalObj, globalKeys[b]);
    if (!bd) continue;
    if ('value' in bd) Object.defineProperty(globalObj, globalKeys[b], { writable: false, configurable: false });
    else Object.defineProperty(globalObj, globalKeys[b], { configurable: false });
  }
  return { harden: harden, verify: verify };
});
