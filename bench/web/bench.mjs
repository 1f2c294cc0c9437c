// The benchmark page: each package (?pkg=/pkg/int8/,/pkg/int4/&key=RW...)
// is loaded in skiff's runtime and, from the same verified bytes
// (model.toOrt), in onnxruntime-web's wasm backend with one thread; both run
// batch 1, seq 128 (?runs=30 timed runs after 3 warm-ups, median). Also the
// time to first result: load + first run on a cold cache and a warm one.
// Results go to the table and to window.benchResult (bench/web.sh reads it).
import { load, clearCache } from '/web/skiff.mjs';
import * as ort from '/ort/ort.wasm.min.mjs';

const q = new URLSearchParams(location.search);
const pkgs = (q.get('pkg') || '').split(',').filter(Boolean);
const key = q.get('key');
const runs = +(q.get('runs') || 30);
const seq = +(q.get('seq') || 128);
ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1;

const median = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[n >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2; };
// A snippet of text as the model sees it: its bytes, padded to seq.
const text = new TextEncoder().encode('int main(void) { printf("hello, world\\n"); return 0; } /* a C snippet */ '.repeat(4));
const ids = new BigInt64Array(seq);
const mask = new BigInt64Array(seq);
for (let i = 0; i < seq; i++) { ids[i] = BigInt(i < text.length ? text[i] : 0); mask[i] = i < text.length ? 1n : 0n; }
const feeds = { input_ids: { data: ids, dims: [1, seq] }, attention_mask: { data: mask, dims: [1, seq] } };

async function time(fn) { const t = performance.now(); await fn(); return performance.now() - t; }

async function bench(pkg) {
  await clearCache({ versions: true });
  let model, total = 0;
  const cold = await time(async () => {
    model = await load(pkg, { publicKey: key, onProgress: (p) => { total = p.total; } });
    await model.run(feeds);
  });
  model.dispose();
  const warm = await time(async () => {
    model = await load(pkg, { publicKey: key });
    await model.run(feeds);
  });
  const session = await model.toOrt(ort, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const of = {
    input_ids: new ort.Tensor('int64', ids, [1, seq]),
    attention_mask: new ort.Tensor('int64', mask, [1, seq]),
  };
  for (let i = 0; i < 3; i++) { await model.run(feeds); await session.run(of); }
  // Interleaved, so that whatever else the machine does hits both alike.
  const sk = [], ot = [];
  let skOut, oOut;
  for (let i = 0; i < runs; i++) {
    sk.push(await time(async () => { skOut = await model.run(feeds); }));
    ot.push(await time(async () => { oOut = await session.run(of); }));
  }
  let maxDiff = 0;
  const a = skOut.logits.data, b = oOut.logits.data;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  await session.release();
  model.dispose();
  const r = { pkg, skiff_ms: median(sk), ort_ms: median(ot), cold_ms: cold, warm_ms: warm, bytes: total, logits_max_diff: maxDiff };
  r.ratio = r.ort_ms / r.skiff_ms;
  return r;
}

const results = [];
try {
  for (const p of pkgs) {
    document.getElementById('status').textContent = `running ${p}…`;
    const r = await bench(p);
    results.push(r);
    const tr = document.createElement('tr');
    for (const v of [r.pkg, r.skiff_ms.toFixed(1), r.ort_ms.toFixed(1), r.ratio.toFixed(2) + 'x', r.cold_ms.toFixed(0), r.warm_ms.toFixed(0), r.bytes])
      tr.appendChild(document.createElement('td')).textContent = v;
    document.querySelector('#results tbody').appendChild(tr);
  }
  document.getElementById('status').textContent = `done: batch 1, seq ${seq}, median of ${runs} runs`;
  window.benchResult = { ok: true, runs, seq, results };
} catch (e) {
  document.getElementById('status').textContent = `failed: ${e.name}: ${e.message}`;
  window.benchResult = { ok: false, error: `${e.name}: ${e.message}`, results };
}
