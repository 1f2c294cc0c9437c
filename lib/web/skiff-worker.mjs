// skiff's inference worker: hosts skiff.wasm (engine, model loader, Brotli
// decoder; lib/web/sk_wasm.c) off the page's main thread. skiff.mjs starts it
// and talks to it with the messages below; each request carries an id and gets
// exactly one reply {id, result} or {id, error: {name, message, file, code}}.
//
//   {op: 'init', wasmUrl}                          -> {}
//   {op: 'model', bytes}                           -> {}        (model.onnx, verified)
//   {op: 'shard', path, rawPath, codec, bytes, rawSize, decoded}
//                                                  -> {}        (decoded unless `decoded`)
//   {op: 'ready', profile}                         -> {inputs: [{name, type, dims}], outputs: [name]}
//   {op: 'run', feeds: {name: {data, dims, type}}} -> {name: {data, dims, type}} (buffers transferred)
//   {op: 'external', rawPaths}                     -> [Uint8Array] (copies of decoded shards)
//   {op: 'profile'}                                -> [{op, calls, ms}] (ready with profile: true)
//   {op: 'free'}                                   -> {}
//
// The worker never fetches anything but skiff.wasm: every byte it is given
// was verified by skiff.mjs against the signed manifest.

// ONNX element types (lib/sk_dtype.h) <-> names and typed arrays.
const TYPES = {
  1: ['float32', Float32Array], 2: ['uint8', Uint8Array], 3: ['int8', Int8Array], 4: ['uint16', Uint16Array],
  5: ['int16', Int16Array], 6: ['int32', Int32Array], 7: ['int64', BigInt64Array], 9: ['bool', Uint8Array],
  10: ['float16', Uint16Array], 11: ['float64', Float64Array], 12: ['uint32', Uint32Array],
  13: ['uint64', BigUint64Array],
};
const BY_NAME = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v[0], +k]));
const SK_EUNSUPPORTED = 4;

let wasm = null; // exports
let model = 0;   // skw_model*

class WorkerError extends Error {
  constructor(name, message, file, code) {
    super(message);
    this.errName = name;
    this.file = file;
    this.code = code;
  }
}

const u8 = () => new Uint8Array(wasm.memory.buffer);
const i64 = (p, n) => new BigInt64Array(wasm.memory.buffer, p, n);

function cstr(p) {
  const m = u8();
  let e = p;
  while (m[e]) e++;
  return new TextDecoder().decode(m.subarray(p, e));
}

function fail(code, file, prefix = '') {
  const msg = cstr(wasm.skw_error_msg());
  const name = code === SK_EUNSUPPORTED ? 'UnsupportedOpError' : 'SkiffError';
  throw new WorkerError(name, (file ? file + ': ' : '') + prefix + msg, file, code);
}

function alloc(n) {
  const p = wasm.skw_alloc(n);
  if (!p) throw new WorkerError('SkiffError', `out of memory (${n} bytes) in the WebAssembly heap`, undefined, 2);
  return p;
}

// Runs fn(ptrs...) with NUL-terminated copies of strs in the heap.
function withStrings(strs, fn) {
  const enc = new TextEncoder();
  const ptrs = strs.map((s) => {
    const b = enc.encode(s);
    const p = alloc(b.length + 1);
    u8().set(b, p);
    u8()[p + b.length] = 0;
    return p;
  });
  try {
    return fn(...ptrs);
  } finally {
    ptrs.forEach((p) => wasm.skw_free(p));
  }
}

async function init(wasmUrl) {
  const imports = {
    env: {
      emscripten_notify_memory_growth() {},
      __syscall_fstat64: () => -52, __syscall_stat64: () => -52, __syscall_fstatat64: () => -52,
      __syscall_getcwd: () => -52, __syscall_readlink: () => -52,
    },
    wasi_snapshot_preview1: {
      fd_close: () => 52,
      clock_time_get(id, prec, out) {
        new BigInt64Array(wasm.memory.buffer, out, 1)[0] = BigInt(Math.round(performance.now() * 1e6));
        return 0;
      },
    },
  };
  let inst;
  try {
    const res = await fetch(wasmUrl);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    inst = (await WebAssembly.instantiate(await res.arrayBuffer(), imports)).instance;
  } catch (e) {
    throw new WorkerError('NetworkError', `skiff.wasm: cannot load ${wasmUrl}: ${e.message}`, 'skiff.wasm');
  }
  wasm = inst.exports;
  wasm._initialize();
  const s = wasm.skw_dict_init(); // Brotli's dictionary, compressed in the wasm
  if (s) fail(s, 'skiff.wasm');
}

function loadModel(bytes) {
  if (model) wasm.skw_model_free(model);
  const b = new Uint8Array(bytes);
  const p = alloc(b.length);
  u8().set(b, p);
  model = wasm.skw_model_create(p, b.length);
  wasm.skw_free(p);
  if (!model) fail(1, 'model.onnx', '');
}

function addShard({ path, rawPath, codec, bytes, rawSize, decoded }) {
  const b = new Uint8Array(bytes);
  const out = alloc(rawSize);
  if (decoded || codec === 'none') {
    if (b.length !== rawSize) {
      wasm.skw_free(out);
      throw new WorkerError('IntegrityError', `${path}: ${b.length} bytes, the manifest says ${rawSize}`, path);
    }
    u8().set(b, out);
  } else if (codec === 'brotli') {
    const inp = alloc(b.length);
    u8().set(b, inp);
    const s = wasm.skw_brotli_decode(inp, b.length, out, rawSize);
    wasm.skw_free(inp);
    if (s) {
      wasm.skw_free(out);
      const msg = cstr(wasm.skw_error_msg());
      throw new WorkerError('IntegrityError', `${path}: ${msg}`, path, s);
    }
  } else {
    wasm.skw_free(out);
    throw new WorkerError('UnsupportedOpError', `${path}: codec '${codec}' is not supported by the browser runtime ` +
      '(pack with --codec brotli or none)', path);
  }
  const s = withStrings([rawPath], (lp) => wasm.skw_model_attach(model, lp, out, rawSize));
  if (s) fail(s, rawPath);
}

function ready(profile) {
  const s = wasm.skw_model_ready(model, profile ? 1 : 0);
  if (s) fail(s, 'model.onnx');
  const rd = alloc(17 * 8);
  const inputs = [];
  const n = wasm.skw_input_count(model);
  for (let i = 0; i < n; i++) {
    const dt = wasm.skw_input_info(model, i, rd);
    const v = i64(rd, 17);
    const rank = Number(v[0]);
    inputs.push({
      name: cstr(wasm.skw_input_name(model, i)),
      type: TYPES[dt] ? TYPES[dt][0] : null,
      dims: rank < 0 ? null : Array.from(v.subarray(1, 1 + rank), (d) => (d < 0 ? null : Number(d))),
    });
  }
  wasm.skw_free(rd);
  const outputs = [];
  for (let i = 0; i < wasm.skw_output_count(model); i++) outputs.push(cstr(wasm.skw_output_name(model, i)));
  return { inputs, outputs };
}

function typeOf(name, t) {
  if (t.type) {
    if (!(t.type in BY_NAME)) throw new WorkerError('TypeError', `input '${name}': unknown type '${t.type}'`);
    return BY_NAME[t.type];
  }
  for (const [k, [, C]] of Object.entries(TYPES)) if (t.data instanceof C) return +k;
  throw new WorkerError('TypeError', `input '${name}': data must be a typed array (got ${Object.prototype.toString.call(t.data)})`);
}

function run(feeds) {
  wasm.skw_inputs_clear(model);
  const rd = alloc(17 * 8);
  try {
    for (const [name, t] of Object.entries(feeds)) {
      const dt = typeOf(name, t);
      const dims = t.dims || [t.data.length];
      if (dims.length > 16) throw new WorkerError('TypeError', `input '${name}': rank ${dims.length} is over 16`);
      const dv = i64(rd, 17);
      dims.forEach((d, i) => { dv[i] = BigInt(d); });
      const p = withStrings([name], (np) => wasm.skw_input_alloc(model, np, dt, dims.length, rd));
      if (!p) fail(1, undefined);
      const nbytes = withStrings([name], (np) => wasm.skw_input_nbytes(model, np));
      const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      if (src.length !== nbytes) {
        throw new WorkerError('TypeError', `input '${name}': ${t.data.length} elements of data for dims ` +
          `[${dims}] (${nbytes} bytes expected, ${src.length} given)`);
      }
      u8().set(src, p);
    }
    const s = wasm.skw_run(model);
    if (s) fail(s, undefined);
    const out = {};
    for (let i = 0; i < wasm.skw_output_count(model); i++) {
      const dt = wasm.skw_output_info(model, i, rd);
      const v = i64(rd, 17);
      const dims = Array.from(v.subarray(1, 1 + Number(v[0])), Number);
      const p = wasm.skw_output_data(model, i), nb = wasm.skw_output_nbytes(model, i);
      const [type, C] = TYPES[dt] || ['uint8', Uint8Array];
      const bytes = u8().slice(p, p + nb);
      const n = dims.reduce((a, b) => a * b, 1);
      out[cstr(wasm.skw_output_name(model, i))] = {
        data: C === Uint8Array ? bytes : new C(bytes.buffer, 0, Math.min(n, nb / C.BYTES_PER_ELEMENT)), dims, type,
      };
    }
    return out;
  } finally {
    wasm.skw_free(rd);
    wasm.skw_inputs_clear(model);
  }
}

function external(rawPaths) {
  const lenp = alloc(4);
  try {
    return rawPaths.map((rp) => {
      const p = withStrings([rp], (s) => wasm.skw_model_external(model, s, lenp));
      if (!p) throw new WorkerError('SkiffError', `${rp}: not attached`, rp);
      const n = new Uint32Array(wasm.memory.buffer, lenp, 1)[0];
      return u8().slice(p, p + n);
    });
  } finally {
    wasm.skw_free(lenp);
  }
}

const ops = {
  init: (m) => init(m.wasmUrl).then(() => ({})),
  model: (m) => (loadModel(m.bytes), {}),
  shard: (m) => (addShard(m), {}),
  ready: (m) => ready(m.profile),
  profile: () => cstr(wasm.skw_profile(model)).split('\n').filter(Boolean).map((l) => {
    const [op, calls, s] = l.split('\t');
    return { op, calls: +calls, ms: 1000 * s };
  }),
  run: (m) => run(m.feeds),
  external: (m) => external(m.rawPaths),
  free: () => { if (model) wasm.skw_model_free(model); model = 0; return {}; },
};

// Requests are handled strictly in order (init is async).
let queue = Promise.resolve();
self.onmessage = (ev) => {
  const m = ev.data;
  queue = queue.then(async () => {
    try {
      if (!ops[m.op]) throw new WorkerError('SkiffError', `unknown request '${m.op}'`);
      if (m.op !== 'init' && !wasm) throw new WorkerError('SkiffError', 'skiff.wasm is not loaded');
      if (m.op !== 'init' && m.op !== 'model' && m.op !== 'free' && !model) {
        throw new WorkerError('SkiffError', 'no model is loaded');
      }
      const result = await ops[m.op](m);
      const transfer = [];
      if (m.op === 'run') for (const t of Object.values(result)) transfer.push(t.data.buffer);
      if (m.op === 'external') for (const b of result) transfer.push(b.buffer);
      self.postMessage({ id: m.id, result }, transfer);
    } catch (e) {
      self.postMessage({
        id: m.id,
        error: { name: e.errName || 'SkiffError', message: e.message, file: e.file, code: e.code },
      });
    }
  });
};
