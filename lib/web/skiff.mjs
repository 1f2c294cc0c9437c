// skiff's browser runtime: load a signed skiff package and run it in a Web
// Worker (skiff-worker.mjs, skiff.wasm). The package format is docs/format.md;
// keys and signatures are docs/format-signatures.md. Types: skiff.d.ts.
//
//   import { load } from './skiff.mjs';
//   const model = await load('https://cdn.example/models/textkind/', { publicKey: 'RWS...' });
//   const out = await model.run({ input_ids: { data: BigInt64Array.from(ids), dims: [1, 128] } });
//
// Order of checks (format.md section 6): the manifest's Ed25519 signature
// (WebCrypto) before anything in it is used; strict parse and invariants;
// the rollback rule; then every file's size and SHA-256 before it is used or
// cached. Nothing unverified is ever cached; an integrity failure also drops
// what this package had put in the cache.

/** Base class of every error skiff throws; `file` names the file at fault. */
export class SkiffError extends Error {
  constructor(message, file) {
    super(message);
    this.file = file;
  }
  get name() { return 'SkiffError'; }
}
/** The manifest's signature is missing, malformed or does not verify with the key. */
export class SignatureError extends SkiffError { get name() { return 'SignatureError'; } }
/** A file's size or hash differs from the signed manifest, or it does not decode. */
export class IntegrityError extends SkiffError { get name() { return 'IntegrityError'; } }
/** The manifest is older than one already accepted for this model and key. */
export class RollbackError extends SkiffError { get name() { return 'RollbackError'; } }
/** A file could not be fetched (and is not in the cache). */
export class NetworkError extends SkiffError { get name() { return 'NetworkError'; } }
/** The model needs an operator (or a codec, a type) this runtime does not have. */
export class UnsupportedOpError extends SkiffError { get name() { return 'UnsupportedOpError'; } }

const ERRORS = { SkiffError, SignatureError, IntegrityError, RollbackError, NetworkError, UnsupportedOpError, TypeError };
const CACHE = 'skiff-v1';            // verified files
const VERSIONS = 'skiff-versions-v1'; // rollback records
const VERSION_URL = 'https://skiff.invalid/versions/';
const PARALLEL = 4;

// ---- small helpers ---------------------------------------------------------

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
const sha256 = async (bytes) => hex(await crypto.subtle.digest('SHA-256', bytes));

/** Parses a minisign public key (the `RW...` string or the whole skiff.pub text). */
function parsePublicKey(key) {
  if (typeof key !== 'string') throw new SignatureError('publicKey is required: the RW... string of skiff.pub');
  const lines = key.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('untrusted comment:'));
  let raw;
  try {
    raw = lines.length === 1 && /^[A-Za-z0-9+/]{56}$/.test(lines[0]) ? b64(lines[0]) : null;
  } catch { raw = null; }
  if (!raw || raw.length !== 42 || raw[0] !== 0x45 || raw[1] !== 0x64) {
    throw new SignatureError('publicKey is not a minisign Ed25519 public key (56 base64 characters starting with RW)');
  }
  return { id: hex(raw.slice(2, 10).reverse()).toUpperCase(), pk: raw.slice(10, 42) };
}

// Strict JSON (format.md section 3): no duplicate keys, integers only (plain
// decimal, non-negative, at most 2^53-1), depth at most 16.
function parseStrict(text) {
  let i = 0;
  const err = (what) => { throw new IntegrityError(`manifest.json: ${what} at offset ${i}`, 'manifest.json'); };
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const value = (depth) => {
    if (depth > 16) err('nesting deeper than 16');
    ws();
    const c = text[i];
    if (c === '{') {
      const o = Object.create(null);
      i++; ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        ws();
        if (text[i] !== '"') err('expected a key');
        const k = str();
        if (k in o) err(`duplicate key "${k}"`);
        ws();
        if (text[i++] !== ':') err('expected ":"');
        o[k] = value(depth + 1);
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i++] === '}') return o;
        err('expected "," or "}"');
      }
    }
    if (c === '[') {
      const a = [];
      i++; ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) {
        a.push(value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i++] === ']') return a;
        err('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    const m = /^(?:true|false|null|0|[1-9][0-9]*)/.exec(text.slice(i, i + 20));
    if (!m) err('unexpected character (only non-negative integers are allowed as numbers)');
    i += m[0].length;
    if (/^[-+.eE0-9]/.test(text[i] || '')) err('number is not a plain integer');
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    if (m[0] === 'null') return null;
    const n = Number(m[0]);
    if (!Number.isSafeInteger(n)) err('integer over 2^53-1');
    return n;
  };
  const str = () => {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(i));
    if (!m) err('bad string');
    i += m[0].length;
    const s = JSON.parse(m[0]);
    if (s.includes('\u0000')) err('NUL in a string');
    if (s.length > 4096) err('string longer than 4096');
    return s;
  };
  const v = value(1);
  ws();
  if (i !== text.length) err('data after the JSON value');
  return v;
}

const TOP = ['format', 'format_version', 'name', 'version', 'created', 'generator', 'model', 'shard_size',
  'alignment', 'files', 'tensors'];
const FILE = ['path', 'role', 'codec', 'size', 'sha256', 'integrity', 'raw_path', 'raw_size', 'raw_sha256',
  'raw_integrity'];
const MODEL = ['ir_version', 'opsets', 'inputs', 'outputs'];
const TENSOR = ['name', 'shard', 'offset', 'length', 'dtype', 'shape'];
const FNAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$/;
const SHA = /^[0-9a-f]{64}$/;

/** Checks the manifest's structure and invariants (format.md section 3). */
function checkManifest(m) {
  const bad = (what) => { throw new IntegrityError(`manifest.json: ${what}`, 'manifest.json'); };
  const keys = (o, list, where) => {
    if (!o || typeof o !== 'object' || Array.isArray(o)) bad(`${where} is not an object`);
    for (const k of Object.keys(o)) if (!list.includes(k)) bad(`unknown key "${k}" in ${where}`);
    for (const k of list) if (!(k in o)) bad(`${where} has no "${k}"`);
  };
  const int = (v, where, min = 0, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isSafeInteger(v) || v < min || v > max) bad(`${where} is not an integer in [${min}, ${max}]`);
  };
  const arr = (v, where) => { if (!Array.isArray(v)) bad(`${where} is not an array`); return v; };
  keys(m, TOP, 'the manifest');
  if (m.format !== 'skiff-package') bad('"format" is not "skiff-package"');
  if (m.format_version !== 1) {
    throw new UnsupportedOpError(`manifest.json: format_version ${m.format_version} is not supported (this runtime reads 1)`, 'manifest.json');
  }
  if (typeof m.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._\-+@/]{0,127}$/.test(m.name)) bad('bad "name"');
  int(m.version, '"version"', 1);
  int(m.shard_size, '"shard_size"', 4096);
  int(m.alignment, '"alignment"', 1, 4096);
  if (m.alignment & (m.alignment - 1)) bad('"alignment" is not a power of two');
  keys(m.model, MODEL, '"model"');
  for (const k of ['inputs', 'outputs']) for (const v of arr(m.model[k], `model.${k}`)) keys(v, ['name', 'dtype', 'shape'], `a model ${k} entry`);
  const files = arr(m.files, '"files"');
  if (files.length < 1 || files.length > 100001) bad('"files" must list model.onnx and at most 100000 shards');
  const names = new Set();
  const raw = new Map();
  files.forEach((f, i) => {
    keys(f, FILE, `files[${i}]`);
    for (const k of ['path', 'raw_path']) {
      if (typeof f[k] !== 'string' || !FNAME.test(f[k]) || f[k].startsWith('manifest.json')) bad(`files[${i}].${k} is not a plain file name`);
    }
    if (names.has(f.path) || (f.raw_path !== f.path && names.has(f.raw_path))) bad(`files[${i}]: "${f.path}" is listed twice`);
    names.add(f.path); names.add(f.raw_path);
    for (const k of ['sha256', 'raw_sha256']) if (!SHA.test(f[k])) bad(`files[${i}].${k} is not 64 lower-case hex digits`);
    int(f.size, `files[${i}].size`, 0, 2 ** 40);
    int(f.raw_size, `files[${i}].raw_size`, 0, 2 ** 40);
    if (!['none', 'brotli', 'zstd'].includes(f.codec)) bad(`files[${i}].codec "${f.codec}" is unknown`);
    if (i === 0) {
      if (f.role !== 'model' || f.path !== 'model.onnx' || f.codec !== 'none') bad('files[0] is not model.onnx (role model, codec none)');
    } else {
      if (f.role !== 'shard') bad(`files[${i}].role is not "shard"`);
      if (f.raw_path !== `shard-${String(i - 1).padStart(5, '0')}.bin`) bad(`files[${i}].raw_path is not shard-${String(i - 1).padStart(5, '0')}.bin`);
    }
    if (f.codec === 'none' && (f.path !== f.raw_path || f.size !== f.raw_size || f.sha256 !== f.raw_sha256)) {
      bad(`files[${i}]: codec none but stored and raw fields differ`);
    }
    raw.set(f.raw_path, f);
  });
  const tensors = arr(m.tensors, '"tensors"');
  if (tensors.length > 1e7) bad('more than 10^7 tensors');
  tensors.forEach((t, i) => {
    keys(t, TENSOR, `tensors[${i}]`);
    const f = raw.get(t.shard);
    if (!f || f.role !== 'shard') bad(`tensors[${i}] ("${t.name}"): shard "${t.shard}" is not listed`);
    int(t.offset, `tensors[${i}].offset`);
    int(t.length, `tensors[${i}].length`);
    if (t.offset % m.alignment) bad(`tensors[${i}] ("${t.name}"): offset is not aligned`);
    if (t.offset + t.length > f.raw_size) bad(`tensors[${i}] ("${t.name}") lies past the end of ${t.shard}`);
  });
  return m;
}

// ---- cache -------------------------------------------------------------------

async function openCache(name, enabled) {
  if (!enabled || typeof caches === 'undefined') return null;
  try { return await caches.open(name); } catch { return null; }
}

/** Removes every cached file of the package at base. */
async function purge(cache, base) {
  if (!cache) return;
  for (const req of await cache.keys()) if (req.url.startsWith(base)) await cache.delete(req);
}

// ---- fetching ---------------------------------------------------------------

async function fetchOk(url, file, init) {
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new NetworkError(`${file}: cannot fetch ${url}: ${e.message}`, file);
  }
  if (!res.ok) throw new NetworkError(`${file}: ${url} answered HTTP ${res.status}`, file);
  return res;
}

/** Reads a response body, calling tick(bytesSoFar, httpDecoded) as data comes. */
async function readBody(res, file, tick) {
  const enc = (res.headers.get('content-encoding') || '').toLowerCase();
  const httpDecoded = enc !== '' && enc !== 'identity';
  const chunks = [];
  let n = 0;
  try {
    if (!res.body) {
      const b = new Uint8Array(await res.arrayBuffer());
      tick(b.length, httpDecoded);
      return b;
    }
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
      tick(n, httpDecoded);
    }
  } catch (e) {
    throw new NetworkError(`${file}: the download broke off after ${n} bytes: ${e.message}`, file);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

// ---- the worker -------------------------------------------------------------

function startWorker(workerUrl) {
  const w = new Worker(workerUrl, { type: 'module' });
  const pending = new Map();
  let next = 1;
  const failAll = (e) => { for (const p of pending.values()) p.reject(e); pending.clear(); };
  w.onmessage = (ev) => {
    const { id, result, error } = ev.data;
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (error) p.reject(new (ERRORS[error.name] || SkiffError)(error.message, error.file));
    else p.resolve(result);
  };
  w.onerror = (ev) => { ev.preventDefault(); failAll(new SkiffError(`skiff worker failed: ${ev.message || 'could not start'}`)); };
  return {
    call(msg, transfer = []) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        w.postMessage({ ...msg, id }, transfer);
      });
    },
    terminate() { w.terminate(); failAll(new SkiffError('the model was disposed')); },
  };
}

// ---- load -------------------------------------------------------------------

/**
 * Loads the signed skiff package at url (a folder URL) and returns a Model.
 * See skiff.d.ts for the options and errors.
 */
export async function load(url, options = {}) {
  const opts = { cache: true, allowDowngrade: false, ...options };
  const { id: keyId, pk } = parsePublicKey(opts.publicKey);
  const base = new URL(url.endsWith('/') ? url : url + '/', globalThis.location?.href).href;
  const progress = typeof opts.onProgress === 'function' ? opts.onProgress : () => {};
  const cache = await openCache(CACHE, opts.cache);
  const versions = await openCache(VERSIONS, true);
  const wasmUrl = opts.wasmUrl || new URL('./skiff.wasm', import.meta.url).href;
  const workerUrl = opts.workerUrl || new URL('./skiff-worker.mjs', import.meta.url).href;

  // 1-2. Manifest and signature, verified before anything else is used; from
  // the cache when the network is unavailable.
  progress({ loaded: 0, total: 0, phase: 'manifest' });
  let mbytes, sigText, fromCache = false;
  try {
    const [mr, sr] = await Promise.all([
      fetchOk(base + 'manifest.json', 'manifest.json', { cache: 'no-cache' }),
      fetchOk(base + 'manifest.json.sig', 'manifest.json.sig', { cache: 'no-cache' }),
    ]);
    mbytes = new Uint8Array(await mr.arrayBuffer());
    sigText = await sr.text();
  } catch (e) {
    const cm = cache && await cache.match(base + 'manifest.json');
    const cs = cache && await cache.match(base + 'manifest.json.sig');
    if (!(e instanceof NetworkError) || !cm || !cs) throw e;
    mbytes = new Uint8Array(await cm.arrayBuffer());
    sigText = await cs.text();
    fromCache = true;
  }
  if (mbytes.length > 64 << 20) throw new IntegrityError('manifest.json: larger than 64 MiB', 'manifest.json');
  const sigLine = sigText.replace(/\r?\n$/, '');
  if (sigText.length > 1024 || !/^[A-Za-z0-9+/]{86}==$/.test(sigLine)) {
    throw new SignatureError('manifest.json.sig: not a plain Ed25519 signature (88 base64 characters)', 'manifest.json.sig');
  }
  let key;
  try {
    key = await crypto.subtle.importKey('raw', pk, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    throw new UnsupportedOpError(`this browser's WebCrypto has no Ed25519 (${e.message})`);
  }
  if (!await crypto.subtle.verify({ name: 'Ed25519' }, key, b64(sigLine), mbytes)) {
    throw new SignatureError(`manifest.json.sig: the signature of manifest.json does not verify with public key ${keyId}`, 'manifest.json.sig');
  }

  // 3. Strict parse and invariants.
  let text;
  try { text = new TextDecoder('utf-8', { fatal: true }).decode(mbytes); } catch {
    throw new IntegrityError('manifest.json: not valid UTF-8', 'manifest.json');
  }
  const m = checkManifest(parseStrict(text));
  const msha = await sha256(mbytes);

  // 4. Rollback rule, per (key, name).
  const vkey = `${VERSION_URL}${keyId}/${encodeURIComponent(m.name)}`;
  const seenRes = versions && await versions.match(vkey);
  const seen = seenRes ? await seenRes.json() : null;
  const newer = !seen || m.version > seen.version;
  if (seen && !opts.allowDowngrade) {
    const s = seen;
    if (m.version < s.version || (m.version === s.version && msha !== s.sha256)) {
      throw new RollbackError(`manifest.json: ${m.name} version ${m.version} is ` +
        (m.version < s.version ? `older than version ${s.version}, already accepted` : `a different manifest than the version ${s.version} already accepted`) +
        ' (allowDowngrade: true accepts it)', 'manifest.json');
    }
  }

  // 5-6. Files: from the cache or the network, each checked before use.
  const total = m.files.reduce((a, f) => a + f.size, 0);
  const got = new Array(m.files.length).fill(0);
  let last = 0;
  const report = (phase) => {
    const loaded = Math.min(total, got.reduce((a, b) => a + b, 0));
    if (loaded < last) return;
    last = loaded;
    progress({ loaded, total, phase });
  };
  const worker = startWorker(workerUrl);
  const bytesOf = new Map();
  let lanes = [];
  try {
    const ready = worker.call({ op: 'init', wasmUrl });
    let posted = ready; // keeps model.onnx first, then shards
    const getFile = async (f, i) => {
      let bytes = null, decoded = false;
      const c = cache && await cache.match(base + f.path);
      if (c) { // checked like a download: the cache is storage, not a proof
        const b = new Uint8Array(await c.arrayBuffer());
        const h = await sha256(b);
        if (b.length === f.size && h === f.sha256) bytes = b;
        else if (b.length === f.raw_size && h === f.raw_sha256) { bytes = b; decoded = true; }
        else await cache.delete(base + f.path);
      }
      const phase = bytes ? 'cache' : 'download';
      if (!bytes) {
        if (fromCache) throw new NetworkError(`${f.path}: not in the cache and the network is unavailable`, f.path);
        const res = await fetchOk(base + f.path, f.path);
        let scaled = false;
        const b = await readBody(res, f.path, (n, httpDecoded) => {
          // Bytes already decoded by HTTP (Content-Encoding) count in proportion.
          if (httpDecoded || n > f.size) scaled = true;
          const v = scaled && f.raw_size ? Math.floor(n * f.size / f.raw_size) : n;
          got[i] = Math.max(got[i], Math.min(v, f.size - 1));
          report('download');
        });
        const h = await sha256(b);
        if (b.length === f.size && h === f.sha256) bytes = b;
        else if (f.codec !== 'none' && b.length === f.raw_size && h === f.raw_sha256) { bytes = b; decoded = true; }
        else {
          throw new IntegrityError(b.length !== f.size && b.length !== f.raw_size
            ? `${f.path}: ${b.length} bytes received, the manifest says ${f.size}`
            : `${f.path}: SHA-256 ${h} does not match the manifest`, f.path);
        }
        if (cache) await cache.put(base + f.path, new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }));
      }
      got[i] = f.size;
      report(phase);
      return { bytes, decoded };
    };
    const model = await getFile(m.files[0], 0);
    bytesOf.set('model.onnx', model.bytes);
    posted = posted.then(() => worker.call({ op: 'model', bytes: model.bytes.slice().buffer }));
    posted.catch(() => {}); // awaited below; this only keeps a failure from going unhandled
    // Shards: PARALLEL at a time, each handed to the worker (which decodes it)
    // as soon as it is verified.
    let nextShard = 1, failed = false;
    const shardJobs = [];
    const lane = async () => {
      while (nextShard < m.files.length && !failed) {
        const i = nextShard++;
        const f = m.files[i];
        let got1;
        try { got1 = await getFile(f, i); } catch (e) { failed = true; throw e; }
        const { bytes, decoded } = got1;
        const p = posted.then(() => worker.call({
          op: 'shard', path: f.path, rawPath: f.raw_path, codec: f.codec, rawSize: f.raw_size, decoded, bytes: bytes.buffer,
        }, [bytes.buffer]));
        p.catch(() => { failed = true; });
        posted = p;
        shardJobs.push(p);
      }
    };
    lanes = Array.from({ length: Math.min(PARALLEL, m.files.length - 1) }, lane);
    await Promise.all(lanes);
    await Promise.all(shardJobs);
    await posted;
    const info = await worker.call({ op: 'ready', profile: !!opts.profile });
    // 7. Accepted: remember the version and keep the manifest for offline use.
    if (versions && newer) {
      await versions.put(vkey, new Response(JSON.stringify({ version: m.version, sha256: msha })));
    }
    if (cache && !fromCache) {
      await cache.put(base + 'manifest.json', new Response(mbytes));
      await cache.put(base + 'manifest.json.sig', new Response(sigText));
      // Files of earlier versions that this one no longer lists.
      const keep = new Set(['manifest.json', 'manifest.json.sig', ...m.files.map((f) => f.path)].map((p) => base + p));
      for (const req of await cache.keys()) if (req.url.startsWith(base) && !keep.has(req.url)) await cache.delete(req);
    }
    report('ready');
    return new Model(worker, m, info, bytesOf.get('model.onnx'));
  } catch (e) {
    worker.terminate();
    await Promise.allSettled(lanes); // downloads in flight end (and cache what verified) first
    if (e instanceof IntegrityError || e instanceof UnsupportedOpError) await purge(cache, base);
    throw e;
  }
}

/** A loaded model; inference runs in its worker, one call at a time. */
export class Model {
  constructor(worker, manifest, info, modelBytes) {
    this._w = worker;
    this._modelBytes = modelBytes;
    /** The verified manifest (name, version, files, tensors, ...). */
    this.manifest = manifest;
    /** Graph inputs: [{name, type, dims}] (dims null where symbolic). */
    this.inputs = info.inputs;
    /** Graph output names. */
    this.outputs = info.outputs;
    this.name = manifest.name;
    this.version = manifest.version;
  }

  /** Runs the model: feeds maps input names to {data, dims, type?}; resolves to {name: {data, dims, type}}. */
  run(feeds) {
    const copy = {};
    for (const [k, t] of Object.entries(feeds)) copy[k] = { data: t.data, dims: t.dims, type: t.type };
    return this._w.call({ op: 'run', feeds: copy });
  }

  /**
   * Creates an onnxruntime-web InferenceSession from the verified bytes
   * (model.onnx plus every decoded shard through `externalData`).
   */
  async toOrt(ort, sessionOptions = {}) {
    const shards = this.manifest.files.slice(1).map((f) => f.raw_path);
    const data = await this._w.call({ op: 'external', rawPaths: shards });
    return ort.InferenceSession.create(this._modelBytes, {
      ...sessionOptions,
      externalData: shards.map((path, i) => ({ path, data: data[i] })),
    });
  }

  /** With load's `profile: true`: time per operator type over all runs so far, most expensive first. */
  profile() { return this._w.call({ op: 'profile' }); }

  /** Frees the worker and its memory. */
  dispose() { this._w.terminate(); }
}

/** Deletes every cached skiff file (all packages) and the rollback records if `versions` is true. */
export async function clearCache({ versions = false } = {}) {
  if (typeof caches === 'undefined') return;
  await caches.delete(CACHE);
  if (versions) await caches.delete(VERSIONS);
}
