/*
 * Make the sandbox's JavaScript intrinsics immutable, once per isolate, before any tenant code.
 *
 * Why: many tenants' filters run one after another in one V8 context. Anything a filter can
 * reach and change (a built-in method, a prototype, a getter, a shim's class) would let it
 * change what later filters, or our own runner, compute. Detecting changes after the fact
 * is not enough (a change can be undone before the check, or act while it is in place), so
 * everything reachable is frozen here and stays frozen for the isolate's lifetime.
 *
 * What it does, in order:
 * 1. Removes the built-ins that run code later, outside the trader-run that asked for it
 *    (WeakRef/FinalizationRegistry callbacks, WebAssembly async compilation,
 *    Atomics.waitAsync, SharedArrayBuffer, mini-racer's setTimeout shim).
 * 2. Guards the global object: it must stay extensible with deletable filter-made globals,
 *    because sloppy-mode filters create globals and the runner deletes them after every
 *    trader. The functions that could make a global permanent (non-configurable define,
 *    preventExtensions/seal/freeze, a prototype change) refuse to do so for the global object.
 * 3. Turns a few data properties of Object.prototype, Function.prototype and Error.prototype
 *    into getter/setter pairs whose setter defines an own property on the receiver, so that
 *    ordinary code such as `obj.toString = f` still works once the prototypes are frozen (the
 *    "override mistake").
 * 4. Walks everything reachable from the global object and from the intrinsics that have no
 *    global name (iterator prototypes, %TypedArray%, generator and async function prototypes,
 *    %ThrowTypeError%, ...) through prototypes, property values and accessors, and freezes
 *    each object. Object.freeze keeps V8's fast paths (measured: slice/map/spread/Map are
 *    unchanged; RegExp methods take V8's generic path, ~1 us per call), whereas redefining
 *    single properties such as Array.prototype.constructor invalidates V8's "protectors" and
 *    made slice/spread 10-70x slower for the isolate's lifetime.
 *
 * This file is one function expression: (globalObj) -> {harden(roots), globalIntact()}.
 * The runner calls harden() on its own reachable objects after capturing its primordials.
 */
(function makeHardener(globalObj) {
  'use strict';

  var call = Function.prototype.call;
  var uncurry = Function.prototype.bind.bind(call);
  var ObjectFreeze = Object.freeze;
  var ObjectDefineProperty = Object.defineProperty;
  var ObjectDefineProperties = Object.defineProperties;
  var ObjectPreventExtensions = Object.preventExtensions;
  var ObjectSeal = Object.seal;
  var ObjectSetPrototypeOf = Object.setPrototypeOf;
  var ObjectKeys = Object.keys;
  var ObjectIsExtensible = Object.isExtensible;
  var ReflectDefineProperty = Reflect.defineProperty;
  var ReflectPreventExtensions = Reflect.preventExtensions;
  var ReflectSetPrototypeOf = Reflect.setPrototypeOf;
  var ReflectOwnKeys = Reflect.ownKeys;
  var ReflectGetPrototypeOf = Reflect.getPrototypeOf;
  var ReflectGetOwnPropertyDescriptor = Reflect.getOwnPropertyDescriptor;
  var ReflectApply = Reflect.apply;
  var ObjectHasOwn = uncurry(Object.prototype.hasOwnProperty);
  var WeakSetHas = uncurry(WeakSet.prototype.has);
  var WeakSetAdd = uncurry(WeakSet.prototype.add);
  var ArrayPrototypePush = uncurry(Array.prototype.push);
  var ArrayPrototypePop = uncurry(Array.prototype.pop);
  var TypeErrorCtor = TypeError;
  var StringCtor = String;

  // --- 1. deferred execution ----------------------------------------------------------
  var timerShims = ['setTimeout', 'clearTimeout', '__timer_manager'];
  var extraRoots = [];
  for (var t = 0; t < timerShims.length; t++) {
    if (ObjectHasOwn(globalObj, timerShims[t])) ArrayPrototypePush(extraRoots, globalObj[timerShims[t]]);
  }
  var removed = ['FinalizationRegistry', 'WeakRef', 'WebAssembly', 'SharedArrayBuffer'];
  for (var r = 0; r < removed.length; r++) delete globalObj[removed[r]];
  delete Atomics.waitAsync;
  // mini-racer declares its timer shims with `var` (not deletable): make them undefined.
  for (var s = 0; s < timerShims.length; s++) {
    if (ObjectHasOwn(globalObj, timerShims[s])) {
      ObjectDefineProperty(globalObj, timerShims[s], { value: undefined, writable: false, configurable: false });
    }
  }

  // --- 2. the global object stays a place for deletable filter globals -----------------
  function refuse(what) {
    throw new TypeErrorCtor(
      'The sandbox does not allow ' + what + ' on the global object: globals a filter ' +
      'creates must stay deletable, they are removed after every trader-run.',
    );
  }

  /** A plain copy of a descriptor read once (a getter-laden descriptor cannot change later). */
  function globalDescriptor(desc) {
    if (desc === null || (typeof desc !== 'object' && typeof desc !== 'function')) return desc;
    var out = { __proto__: null };
    var names = ['value', 'writable', 'get', 'set', 'enumerable', 'configurable'];
    for (var i = 0; i < names.length; i++) if (names[i] in desc) out[names[i]] = desc[names[i]];
    if (!('configurable' in out)) out.configurable = true;
    else if (!out.configurable) return null;
    return out;
  }

  function hotKey(o, key) {
    return o === Array.prototype && (key === 'constructor' || key === Symbol.iterator);
  }

  function setName(fn, name, length) {
    ObjectDefineProperty(fn, 'name', { value: name });
    ObjectDefineProperty(fn, 'length', { value: length });
    return fn;
  }

  var guarded = {
    defineProperty: setName(function (o, key, desc) {
      if (hotKey(o, key)) throw new TypeErrorCtor('Cannot redefine property: ' + StringCtor(key));
      if (o !== globalObj) return ObjectDefineProperty(o, key, desc);
      var safe = globalDescriptor(desc);
      if (safe === null) refuse('a non-configurable property');
      return ObjectDefineProperty(o, key, safe);
    }, 'defineProperty', 3),
    defineProperties: setName(function (o, props) {
      if (o !== globalObj && o !== Array.prototype) return ObjectDefineProperties(o, props);
      var keys = ObjectKeys(props);
      for (var i = 0; i < keys.length; i++) guarded.defineProperty(o, keys[i], props[keys[i]]);
      return o;
    }, 'defineProperties', 2),
    preventExtensions: setName(function (o) {
      if (o === globalObj) refuse('preventExtensions');
      return ObjectPreventExtensions(o);
    }, 'preventExtensions', 1),
    seal: setName(function (o) {
      if (o === globalObj) refuse('seal');
      return ObjectSeal(o);
    }, 'seal', 1),
    freeze: setName(function (o) {
      if (o === globalObj) refuse('freeze');
      return ObjectFreeze(o);
    }, 'freeze', 1),
    setPrototypeOf: setName(function (o, proto) {
      if (o === globalObj) refuse('a prototype change');
      return ObjectSetPrototypeOf(o, proto);
    }, 'setPrototypeOf', 2),
  };
  var reflectGuarded = {
    defineProperty: setName(function (o, key, desc) {
      if (hotKey(o, key)) return false;
      if (o !== globalObj) return ReflectDefineProperty(o, key, desc);
      var safe = globalDescriptor(desc);
      return safe === null ? false : ReflectDefineProperty(o, key, safe);
    }, 'defineProperty', 3),
    preventExtensions: setName(function (o) {
      return o === globalObj ? false : ReflectPreventExtensions(o);
    }, 'preventExtensions', 1),
    setPrototypeOf: setName(function (o, proto) {
      return o === globalObj ? false : ReflectSetPrototypeOf(o, proto);
    }, 'setPrototypeOf', 2),
  };
  var gk = ObjectKeys(guarded);
  for (var g1 = 0; g1 < gk.length; g1++) Object[gk[g1]] = guarded[gk[g1]];
  var rk = ObjectKeys(reflectGuarded);
  for (var g2 = 0; g2 < rk.length; g2++) Reflect[rk[g2]] = reflectGuarded[rk[g2]];
  var protoDesc = ReflectGetOwnPropertyDescriptor(Object.prototype, '__proto__');
  if (protoDesc && protoDesc.set) {
    var protoSet = protoDesc.set;
    ObjectDefineProperty(Object.prototype, '__proto__', {
      get: protoDesc.get,
      set: setName(function (proto) {
        if (this === globalObj) refuse('a prototype change');
        ReflectApply(protoSet, this, [proto]);
      }, 'set __proto__', 1),
    });
  }

  // --- 3. the override mistake -----------------------------------------------------------
  function assignable(proto, name) {
    var desc = ReflectGetOwnPropertyDescriptor(proto, name);
    if (!desc || !('value' in desc)) return;
    var value = desc.value;
    ObjectDefineProperty(proto, name, {
      get: setName(function () {
        return value;
      }, name, 0),
      set: setName(function (v) {
        if (this === proto) throw new TypeErrorCtor('Cannot assign to read only property ' + StringCtor(name));
        // What the assignment would have done if the prototype were not frozen (a
        // non-extensible receiver keeps failing, silently as a sloppy assignment would).
        if (this === null || (typeof this !== 'object' && typeof this !== 'function')) return;
        ReflectDefineProperty(this, name, { value: v, writable: true, enumerable: true, configurable: true });
      }, name, 1),
      enumerable: desc.enumerable,
      configurable: true,
    });
  }
  var enablements = [
    [Object.prototype, ['constructor', 'toString', 'valueOf', 'toLocaleString', 'hasOwnProperty',
      'isPrototypeOf', 'propertyIsEnumerable']],
    [Function.prototype, ['toString']],
    [Error.prototype, ['constructor', 'name', 'message', 'toString']],
  ];
  for (var e = 0; e < enablements.length; e++) {
    var names = enablements[e][1];
    for (var n = 0; n < names.length; n++) assignable(enablements[e][0], names[n]);
  }

  // --- 4. freeze everything reachable ---------------------------------------------------
  var ObjectPrototype = Object.prototype;
  var ArrayPrototype = Array.prototype;
  // Array.prototype keys guarded by V8 protectors. Any redefinition, even of attributes
  // only, turns off V8's slice/map/spread fast paths for the isolate's lifetime (helper code
  // measured 1.6-2.8x slower), and Object.freeze(Array.prototype) slows array reads. So
  // these two stay writable data properties: the guarded defineProperty functions refuse
  // them, the runner and the memo never depend on them (loop copies, no iteration, memo
  // bypassed while they differ from startup), and `resetGlobals` fails the trader that
  // changed them with `tampering` (the isolate is rebuilt). Annex B's __defineGetter__ /
  // __defineSetter__ bypass the guards and can make them accessors: `arrayIntact` compares
  // whole descriptors, so that counts as a change too. See docs/sandbox.md.
  var ARRAY_HOT = ['constructor', Symbol.iterator];

  /**
   * Object.freeze semantics for Object.prototype and Array.prototype, property by property.
   * Object.freeze on them changes their elements kind, which V8 treats as "prototype may
   * have elements" and slows every array read in helper code (measured ~1.5x on the demo
   * filters); per-property attributes plus preventExtensions do not.
   */
  function lockInPlace(obj) {
    var keys = ReflectOwnKeys(obj);
    for (var i = 0; i < keys.length; i++) {
      if (obj === ArrayPrototype && (keys[i] === ARRAY_HOT[0] || keys[i] === ARRAY_HOT[1])) continue;
      var d = ReflectGetOwnPropertyDescriptor(obj, keys[i]);
      if (d === undefined) continue;
      if ('value' in d) {
        if (d.writable || d.configurable) ObjectDefineProperty(obj, keys[i], { writable: false, configurable: false });
      } else if (d.configurable) {
        ObjectDefineProperty(obj, keys[i], { configurable: false });
      }
    }
    ObjectPreventExtensions(obj);
  }

  var seen = new WeakSet();
  /** Freeze every object reachable from `roots` (own properties, accessors, prototypes). */
  function harden(roots) {
    var stack = [];
    for (var i = 0; i < roots.length; i++) ArrayPrototypePush(stack, roots[i]);
    while (stack.length > 0) {
      var obj = ArrayPrototypePop(stack);
      if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) continue;
      if (obj === globalObj || WeakSetHas(seen, obj)) continue;
      WeakSetAdd(seen, obj);
      ArrayPrototypePush(stack, ReflectGetPrototypeOf(obj));
      var keys = ReflectOwnKeys(obj);
      for (var k = 0; k < keys.length; k++) {
        var d = ReflectGetOwnPropertyDescriptor(obj, keys[k]);
        if (d === undefined) continue;
        if ('value' in d) ArrayPrototypePush(stack, d.value);
        else {
          ArrayPrototypePush(stack, d.get);
          ArrayPrototypePush(stack, d.set);
        }
      }
      if (obj === ObjectPrototype || obj === ArrayPrototype) lockInPlace(obj);
      else ObjectFreeze(obj);
    }
  }

  // Intrinsics without a global name.
  function* gen() {}
  async function asyncFn() {}
  async function* asyncGen() {}
  var hidden = [
    ReflectGetPrototypeOf(gen),
    ReflectGetPrototypeOf(asyncFn),
    ReflectGetPrototypeOf(asyncGen),
    ReflectGetPrototypeOf(gen()),
    ReflectGetPrototypeOf(asyncGen()),
    ReflectGetPrototypeOf([][Symbol.iterator]()),
    ReflectGetPrototypeOf(new Map()[Symbol.iterator]()),
    ReflectGetPrototypeOf(new Set()[Symbol.iterator]()),
    ReflectGetPrototypeOf(''[Symbol.iterator]()),
    ReflectGetPrototypeOf('a'.matchAll(/a/g)),
    ReflectGetPrototypeOf(Int8Array),
    ReflectGetOwnPropertyDescriptor(
      (function () {
        'use strict';
        return arguments;
      })(),
      'callee',
    ).get,
    ReflectGetPrototypeOf(globalObj),
  ];
  if (typeof Iterator === 'function') {
    ArrayPrototypePush(hidden, ReflectGetPrototypeOf([].values().map(function (x) { return x; })));
    ArrayPrototypePush(hidden, ReflectGetPrototypeOf(Iterator.from({ next: function () { return { done: true }; } })));
  }
  if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
    var segments = new Intl.Segmenter().segment('');
    ArrayPrototypePush(hidden, ReflectGetPrototypeOf(segments));
    ArrayPrototypePush(hidden, ReflectGetPrototypeOf(segments[Symbol.iterator]()));
  }
  var globalKeys = ReflectOwnKeys(globalObj);
  for (var gkey = 0; gkey < globalKeys.length; gkey++) {
    var gd = ReflectGetOwnPropertyDescriptor(globalObj, globalKeys[gkey]);
    if ('value' in gd) ArrayPrototypePush(hidden, gd.value);
    else {
      ArrayPrototypePush(hidden, gd.get);
      ArrayPrototypePush(hidden, gd.set);
    }
  }
  for (var x = 0; x < extraRoots.length; x++) ArrayPrototypePush(hidden, extraRoots[x]);
  harden(hidden);

  // The global object stays extensible, but its built-in bindings become permanent.
  for (var b = 0; b < globalKeys.length; b++) {
    var bd = ReflectGetOwnPropertyDescriptor(globalObj, globalKeys[b]);
    if (!bd) continue;
    if ('value' in bd) ObjectDefineProperty(globalObj, globalKeys[b], { writable: false, configurable: false });
    else ObjectDefineProperty(globalObj, globalKeys[b], { configurable: false });
  }

  // Backstop: the two protector-guarded keys, compared after every trader.
  var hotBaseline = [
    ReflectGetOwnPropertyDescriptor(ArrayPrototype, ARRAY_HOT[0]),
    ReflectGetOwnPropertyDescriptor(ArrayPrototype, ARRAY_HOT[1]),
  ];

  function sameDescriptor(a, b) {
    return a !== undefined && a.value === b.value && a.get === b.get && a.set === b.set &&
      a.writable === b.writable && a.enumerable === b.enumerable && a.configurable === b.configurable;
  }

  /** Whether Array.prototype.constructor and [Symbol.iterator] are as at startup. */
  function arrayIntact() {
    return sameDescriptor(ReflectGetOwnPropertyDescriptor(ArrayPrototype, ARRAY_HOT[0]), hotBaseline[0]) &&
      sameDescriptor(ReflectGetOwnPropertyDescriptor(ArrayPrototype, ARRAY_HOT[1]), hotBaseline[1]);
  }

  var baselineKeys = new Set(globalKeys);
  var SetHas = uncurry(Set.prototype.has);
  var ReflectDeleteProperty = Reflect.deleteProperty;
  var baselineProto = ReflectGetPrototypeOf(globalObj);

  /**
   * Delete every global a filter created. Returns '' or what could not be undone (the
   * guards above make that impossible; this is the backstop that condemns the isolate).
   */
  function resetGlobals() {
    var problem = '';
    var keys = ReflectOwnKeys(globalObj);
    for (var i = 0; i < keys.length; i++) {
      if (!SetHas(baselineKeys, keys[i]) && !ReflectDeleteProperty(globalObj, keys[i])) {
        problem = 'a non-deletable global was defined: ' + StringCtor(keys[i]);
      }
    }
    if (ReflectGetPrototypeOf(globalObj) !== baselineProto) problem = 'the global object prototype was changed';
    if (!ObjectIsExtensible(globalObj)) problem = 'the global object was made non-extensible';
    if (!arrayIntact()) problem = 'Array.prototype.constructor or Array.prototype[Symbol.iterator] was changed';
    return problem;
  }

  return ObjectFreeze({ harden: harden, resetGlobals: resetGlobals, arrayIntact: arrayIntact });
});
