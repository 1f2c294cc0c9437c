// CPU time per inference of skiff.wasm and of onnxruntime-web's wasm backend
// (one thread), both in Node's V8 (Chromium's engine), on the same .onnx
// files: batch 1, seq 128, the input of bench/web/bench.mjs. process.cpuUsage
// does not count time spent waiting for a core, so on a loaded machine this
// ranks the two runtimes' code where wall-clock medians (bench/web.sh) swing
// by 2x; it leaves out what only a browser has (the worker round trip).
// Rounds alternate skiff and ORT; each prints CPU ms per run.
// usage: node bench/web/cpu.mjs SKIFF_WASM MODEL.onnx... [--rounds R] [--runs N]
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { gunzipSync } from 'node:zlib';
import { createSession } from '../../tests/oracle/ort-common.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? +args.splice(i, 2)[1] : d; };
const rounds = opt('--rounds', 3), runs = opt('--runs', 30);
const [wasmPath, ...models] = args;
v8.setFlagsFromString('--no-liftoff'); // both compiled by the optimizing tier up front

const SEQ = 128;
const text = new TextEncoder().encode('int main(void) { printf("hello, world\\n"); return 0; } /* a C snippet */ '.repeat(4));
const ids = new BigInt64Array(SEQ), mask = new BigInt64Array(SEQ);
for (let i = 0; i < SEQ; i++) { ids[i] = BigInt(i < text.length ? text[i] : 0); mask[i] = i < text.length ? 1n : 0n; }

// skiff.wasm driven the way lib/web/skiff-worker.mjs drives it.
async function skiff(modelPath) {
  let w;
  const imports = {
    env: { emscripten_notify_memory_growth() {}, __syscall_fstat64: () => -52, __syscall_stat64: () => -52,
      __syscall_fstatat64: () => -52, __syscall_getcwd: () => -52, __syscall_readlink: () => -52 },
    wasi_snapshot_preview1: { fd_close: () => 52, clock_time_get(id, prec, out) {
      new BigInt64Array(w.memory.buffer, out, 1)[0] = BigInt(Math.round(performance.now() * 1e6)); return 0; } },
  };
  w = (await WebAssembly.instantiate(readFileSync(wasmPath), imports)).instance.exports;
  w._initialize();
  const u8 = () => new Uint8Array(w.memory.buffer);
  const str = (s) => { const e = new TextEncoder().encode(s + '\0'); const p = w.skw_alloc(e.length); u8().set(e, p); return p; };
  const err = (what) => { const p = w.skw_error_msg(); let e = p; while (u8()[e]) e++; return new Error(`${modelPath}: ${what}: ${new TextDecoder().decode(u8().subarray(p, e))}`); };
  if (w.skw_dict_init) {
    if (w.skw_dict_init()) throw err('init');
  } else { // builds before skw_dict_init (A/B against an older tree): a gzip dictionary
    const lp = w.skw_alloc(4), gz = w.skw_dict_gz(lp), n = new Uint32Array(w.memory.buffer, lp, 1)[0];
    const d = gunzipSync(u8().slice(gz, gz + n)), dp = w.skw_alloc(d.length);
    u8().set(d, dp);
    if (w.skw_dict_set(dp, d.length)) throw err('init');
  }
  const b = readFileSync(modelPath), p = w.skw_alloc(b.length);
  u8().set(b, p);
  const m = w.skw_model_create(p, b.length);
  w.skw_free(p);
  if (!m || w.skw_model_ready(m, 0)) throw err('load');
  const rd = w.skw_alloc(17 * 8), names = ['input_ids', 'attention_mask'].map(str), data = [ids, mask];
  return () => {
    w.skw_inputs_clear(m);
    names.forEach((np, k) => {
      const d = new BigInt64Array(w.memory.buffer, rd, 3);
      d[0] = 1n; d[1] = BigInt(SEQ);
      const q = w.skw_input_alloc(m, np, 7, 2, rd);
      if (!q) throw err('input');
      new BigInt64Array(w.memory.buffer, q, SEQ).set(data[k]);
    });
    if (w.skw_run(m)) throw err('run');
  };
}

async function ort(modelPath) {
  const { ort: o, session } = await createSession(modelPath, { web: true, eagerWasm: true });
  const feeds = { input_ids: new o.Tensor('int64', ids, [1, SEQ]), attention_mask: new o.Tensor('int64', mask, [1, SEQ]) };
  return () => session.run(feeds);
}

async function cpuPerRun(run) {
  for (let i = 0; i < 3; i++) await run();
  const c = process.cpuUsage();
  for (let i = 0; i < runs; i++) await run();
  const d = process.cpuUsage(c);
  return (d.user + d.system) / 1000 / runs;
}

console.log(`CPU ms per run (batch 1, seq ${SEQ}, ${runs} runs a round), Node ${process.version}`);
console.log('model'.padEnd(36) + 'skiff ms'.padStart(10) + 'ort-web ms'.padStart(12) + 'ort/skiff'.padStart(11));
for (const mp of models) {
  const [s, o] = [await skiff(mp), await ort(mp)];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [['o', o], ['s', s]] : [['s', s], ['o', o]];
    const t = {};
    for (const [k, f] of order) t[k] = await cpuPerRun(f);
    console.log(mp.slice(-36).padEnd(36) + t.s.toFixed(2).padStart(10) + t.o.toFixed(2).padStart(12) + `${(t.o / t.s).toFixed(2)}x`.padStart(11));
  }
}
