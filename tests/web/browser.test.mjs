// The browser runtime's tests, in Debian's headless Chromium driven by
// playwright-core, against packages served from 127.0.0.1 by servers this
// script starts and stops (tests/web/server.mjs). Run by tests/web/run.sh,
// which builds the runtime and the packages first.
//
// usage: node tests/web/browser.test.mjs PKGDIR [--only NAME] [--eval N]
// Prints "ok: ...", "FAIL: ...", "skipped: ..." lines and "N passed, M failed".
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { readNpy, writeNpy } from '../oracle/npy.mjs';
import { serve } from './server.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const PKG = args[0] || 'build/web-test';
const ONLY = opt('--only');
const B = process.env.B || 'build';
const MODELS = '../shared/models/bert_bytes_cls';
const NEVAL = +(opt('--eval', process.env.SKIFF_WEB_EVAL || '464'));
const KEY = readFileSync(join(PKG, 'pubkey'), 'utf8').trim();
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

let passed = 0, failed = 0;
const ok = (name) => { passed++; console.log(`ok: ${name}`); };
const fail = (name, why) => { failed++; console.log(`FAIL: ${name}: ${why}`); };
const check = (cond, name, why) => (cond ? ok(name) : fail(name, why));
const skip = (name, why) => console.log(`skipped: ${name}: ${why}`);

const app = await serve({
  mounts: { '/web/': `${B}/web`, '/test/': 'tests/web/pages', '/ort/': 'node_modules/onnxruntime-web/dist' },
});
const cdn = await serve({ mounts: { '/pkg/': PKG } });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS });

async function newPage() {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`  (page error: ${e.message})`));
  await page.goto(`${app.url}/test/harness.html`);
  await page.waitForFunction(() => window.harnessReady);
  return { ctx, page };
}
const tryLoad = (page, url, key = KEY, extra = {}) =>
  page.evaluate(([u, k, e]) => window.tryLoad(u, k, e), [url, key, extra]);
const cached = (page, base) => page.evaluate((b) => window.cachedUnder(b), base);
const want = (name) => !ONLY || ONLY.split(',').includes(name);

// A copy of the fp32 package, changed by fn(dir), served as /pkg/bad/NAME/.
function badCopy(name, fn) {
  const d = join(PKG, 'bad', name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(join(PKG, 'bad'), { recursive: true });
  cpSync(join(PKG, 'fp32'), d, { recursive: true });
  fn(d);
  return `${cdn.url}/pkg/bad/${name}/`;
}
const shards = readdirSync(join(PKG, 'fp32')).filter((f) => f.startsWith('shard-')).sort();

function monotonic(events) {
  for (let i = 1; i < events.length; i++) if (events[i].loaded < events[i - 1].loaded) return false;
  return true;
}

// Expects load to fail with error class cls naming file, and nothing cached.
async function expectFailure(name, url, cls, file, key = KEY, extra = {}) {
  const { ctx, page } = await newPage();
  try {
    const r = await tryLoad(page, url, key, extra);
    const c = await cached(page, url);
    if (r.ok) fail(name, 'load succeeded');
    else if (r.name !== cls || !r.isSkiff) fail(name, `${r.name}: ${r.message} (wanted ${cls})`);
    else if (file && (r.file !== file || !r.message.includes(file))) fail(name, `error names '${r.file}': ${r.message} (wanted ${file})`);
    else if (c.length) fail(name, `left ${c.length} files in the cache: ${c.slice(0, 3).join(' ')}`);
    else ok(`${name} (${r.name}: ${r.message})`);
  } finally {
    await ctx.close();
  }
}

try {
  // ---- same logits as skiff-run natively, same accuracy ----------------------
  if (want('accuracy')) {
    if (!existsSync(join(MODELS, 'eval_input_ids.npy'))) skip('accuracy', `${MODELS} is missing`);
    else {
      const ids = readNpy(join(MODELS, 'eval_input_ids.npy'));
      const labels = readNpy(join(MODELS, 'eval_labels.npy'));
      const n = Math.min(NEVAL, ids.shape[0]), seq = ids.shape[1];
      const idsFlat = Array.from(ids.data.subarray(0, n * seq), Number);
      // Native reference: skiff-run on the same n samples.
      const tmp = join(PKG, 'native');
      mkdirSync(tmp, { recursive: true });
      const npy = (path, arr, dims) => writeNpy(path, { dtype: 'int64', shape: dims, data: BigInt64Array.from(arr, BigInt) });
      // Dynamic quantization scales depend on the whole batch: both sides run
      // the same batches of BATCH samples.
      const BATCH = 16;
      for (let s = 0; s < n; s += BATCH) {
        const b = Math.min(BATCH, n - s);
        npy(join(tmp, `ids-${s}.npy`), idsFlat.slice(s * seq, (s + b) * seq), [b, seq]);
        npy(join(tmp, `mask-${s}.npy`), new Array(b * seq).fill(1), [b, seq]);
      }
      const models = { fp32: join(MODELS, 'model.onnx'), int8: join(PKG, 'q/int8.onnx'), int4: join(PKG, 'q/int4.onnx') };
      const { ctx, page } = await newPage();
      try {
        for (const [v, onnx] of Object.entries(models)) {
          const nat = [];
          for (let s = 0; s < n; s += BATCH) {
            const od = join(tmp, `${v}-${s}`);
            execFileSync(`${B}/bin/skiff-run`, [onnx, '--input', `input_ids=${join(tmp, `ids-${s}.npy`)}`,
              '--input', `attention_mask=${join(tmp, `mask-${s}.npy`)}`, '--output-dir', od, '-q']);
            nat.push(...readNpy(join(od, 'logits.npy')).data);
          }
          const r = await tryLoad(page, `${cdn.url}/pkg/${v}/`);
          if (!r.ok) { fail(`${v}: load`, `${r.name}: ${r.message}`); continue; }
          const got = await page.evaluate(([a, b, c, d]) => window.runIds(a, b, c, d), [idsFlat, n, seq, BATCH]);
          // |browser - native| <= 1e-5 + 1e-4 |native| (relative, with the usual
          // small absolute floor for logits near zero); worst = max of the ratio.
          let worst = 0, at = 0;
          for (let i = 0; i < got.length; i++) {
            const e = Math.abs(got[i] - nat[i]) / (1e-5 + 1e-4 * Math.abs(nat[i]));
            if (e > worst) { worst = e; at = i; }
          }
          const acc = (lg) => {
            let c = 0;
            for (let s = 0; s < n; s++) {
              let best = 0;
              for (let k = 1; k < 4; k++) if (lg[s * 4 + k] > lg[s * 4 + best]) best = k;
              if (best === Number(labels.data[s])) c++;
            }
            return c / n;
          };
          const ab = acc(got), an = acc(nat);
          // fp32 and int4 (float activations): 1e-4 relative. int8 quantizes
          // activations at run time, so the last-bit differences between the
          // native and wasm kernels' float sums can move a value to the next
          // int8 step: there, logits within 0.05 and the same class for 99%.
          let maxAbs = 0, sameClass = 0;
          for (let i = 0; i < got.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got[i] - nat[i]));
          const cls = (lg, s) => [0, 1, 2, 3].reduce((b, k) => (lg[s * 4 + k] > lg[s * 4 + b] ? k : b), 0);
          for (let s = 0; s < n; s++) if (cls(got, s) === cls(nat, s)) sameClass++;
          if (v === 'int8') {
            check(got.length === n * 4 && maxAbs <= 0.05 && sameClass >= 0.99 * n,
              `${v}: logits of ${n} eval samples match skiff-run (max abs diff ${maxAbs.toExponential(1)}, same class ${sameClass}/${n})`,
              `max abs diff ${maxAbs}, same class ${sameClass}/${n}`);
          } else {
            check(got.length === n * 4 && worst <= 1, `${v}: logits of ${n} eval samples match skiff-run within 1e-4 relative (max abs diff ${maxAbs.toExponential(1)}, ${(100 * worst).toFixed(0)}% of the tolerance)`,
              `${worst.toFixed(2)}x the tolerance at ${at}: browser ${got[at]}, native ${nat[at]}`);
          }
          check(ab === an, `${v}: accuracy ${ab.toFixed(4)} in the browser, ${an.toFixed(4)} natively`, `browser ${ab} native ${an}`);
        }
        // toOrt: onnxruntime-web on the same verified bytes agrees.
        const r = await tryLoad(page, `${cdn.url}/pkg/fp32/`);
        const one = idsFlat.slice(0, seq);
        const sk = await page.evaluate(([a, c]) => window.runIds(a, 1, c, 1), [one, seq]);
        const o = r.ok ? await page.evaluate(([a, c]) => window.ortLogits(a, c), [one, seq]) : [];
        const d = Math.max(...sk.map((x, i) => Math.abs(x - o[i]) / Math.max(Math.abs(o[i]), 1e-3)));
        check(o.length === 4 && d <= 1e-4, `toOrt: onnxruntime-web on the verified bytes gives the same logits (${d.toExponential(1)})`, `${sk} vs ${o}`);
      } finally {
        await ctx.close();
      }
    }
  }

  // ---- progress ----------------------------------------------------------------
  if (want('progress')) {
    const total = JSON.parse(readFileSync(join(PKG, 'fp32/manifest.json'))).files.reduce((a, f) => a + f.size, 0);
    for (const [label, br] of [['plain', false], ['Content-Encoding: br', true]]) {
      const { ctx, page } = await newPage();
      cdn.brAll = br;
      try {
        const r = await tryLoad(page, `${cdn.url}/pkg/fp32/`);
        const ev = r.events.filter((e) => e.phase !== 'manifest');
        const last = ev[ev.length - 1];
        check(r.ok && monotonic(r.events) && last.loaded === total && last.total === total && ev.every((e) => e.total === total) && ev.length > shards.length,
          `progress (${label}): ${ev.length} events, monotonic, ending at exactly ${total} bytes`,
          r.ok ? `last ${JSON.stringify(last)}, monotonic ${monotonic(r.events)}` : `${r.name}: ${r.message}`);
        const c = await cached(page, `${cdn.url}/pkg/fp32/`);
        check(c.length === shards.length + 3, `cache (${label}): ${c.length} verified files cached`, `cached ${c.length}, want ${shards.length + 3}`);
      } finally {
        cdn.brAll = false;
        await ctx.close();
      }
    }
  }

  // ---- failures: the right error, nothing cached --------------------------------
  if (want('failures')) {
    const mid = shards[3];
    await expectFailure('flipped byte in a shard', badCopy('flip', (d) => {
      const b = readFileSync(join(d, mid));
      b[b.length >> 1] ^= 0x20;
      writeFileSync(join(d, mid), b);
    }), 'IntegrityError', mid);
    await expectFailure('swapped shard', badCopy('swap', (d) => copyFileSync(join(d, shards[2]), join(d, shards[1]))),
      'IntegrityError', shards[1]);
    await expectFailure('truncated response', badCopy('trunc', (d) => truncateSync(join(d, shards[5]), 1000)),
      'IntegrityError', shards[5]);
    await expectFailure('wrong public key', `${cdn.url}/pkg/fp32/`, 'SignatureError', 'manifest.json.sig',
      'RWQWCKrF0VmiSsyfRi6gWXoerf2MH1aII+6gLpH4QEasfy7kyBvDmTxJ');
    await expectFailure('missing signature', badCopy('nosig', (d) => rmSync(join(d, 'manifest.json.sig'))),
      'NetworkError', 'manifest.json.sig');
    await expectFailure('tampered manifest', badCopy('manifest', (d) => {
      const t = readFileSync(join(d, 'manifest.json'), 'utf8').replace(/"version": (\d+)/, (_, v) => `"version": ${+v + 1}`);
      writeFileSync(join(d, 'manifest.json'), t);
    }), 'SignatureError', 'manifest.json.sig');
    // Downgrade: v2 accepted first, then v1 (genuinely signed) is refused.
    const { ctx, page } = await newPage();
    try {
      const r2 = await tryLoad(page, `${cdn.url}/pkg/fp32/`);
      const r1 = await tryLoad(page, `${cdn.url}/pkg/fp32-old/`);
      const c = await cached(page, `${cdn.url}/pkg/fp32-old/`);
      check(r2.ok && !r1.ok && r1.name === 'RollbackError' && r1.file === 'manifest.json' && c.length === 0,
        `downgraded manifest refused (${r1.name}: ${r1.message}), nothing cached`, JSON.stringify({ r2: r2.ok, r1, c }));
      const r3 = await tryLoad(page, `${cdn.url}/pkg/fp32-old/`, KEY, { allowDowngrade: true });
      check(r3.ok, 'downgraded manifest accepted with allowDowngrade: true', `${r3.name}: ${r3.message}`);
      const r4 = await tryLoad(page, `${cdn.url}/pkg/fp32-old/`);
      check(!r4.ok && r4.name === 'RollbackError', 'the highest version seen is kept after an allowed downgrade', JSON.stringify(r4));
    } finally {
      await ctx.close();
    }
    if (existsSync(join(PKG, 'unsupported/manifest.json'))) {
      const key = readFileSync(join(PKG, 'unsupported/pubkey'), 'utf8').trim();
      await expectFailure('unsupported op', `${cdn.url}/pkg/unsupported/`, 'UnsupportedOpError', 'model.onnx', key);
    } else skip('unsupported op', 'no unsupported/ package');
  }

  // ---- a genuinely signed but malformed manifest is refused ---------------------
  if (want('manifest')) {
    const tkey = readFileSync(join(PKG, 'tiny/pubkey'), 'utf8').trim();
    const { ctx, page } = await newPage();
    try {
      const r = await tryLoad(page, `${cdn.url}/pkg/tiny/`, tkey);
      const z = r.ok ? await page.evaluate(async () => {
        const o = await window.model.run({ x: { data: new Float32Array(16).fill(1), dims: [1, 16] } });
        return Array.from(o.z.data);
      }) : [];
      check(z.length === 16 && z.every((v) => v === 16), 'tiny package loads and runs (x @ ones = 16)', r.ok ? String(z) : r.message);
    } finally {
      await ctx.close();
    }
    const cases = [
      ['duplicate key', (t) => t.replace('"format_version": 1,', '"format_version": 1,\n  "format_version": 1,'), 'IntegrityError', 'manifest.json'],
      ['unknown key', (t) => t.replace('"format_version": 1,', '"format_version": 1,\n  "extra": 1,'), 'IntegrityError', 'manifest.json'],
      ['fraction', (t) => t.replace('"alignment": 64', '"alignment": 64.0'), 'IntegrityError', 'manifest.json'],
      ['exponent', (t) => t.replace('"alignment": 64', '"alignment": 6.4e1'), 'IntegrityError', 'manifest.json'],
      ['negative', (t) => t.replace('"version": 1,', '"version": -1,'), 'IntegrityError', 'manifest.json'],
      ['path with ..', (t) => t.replace('"path": "shard-00000.bin.br"', '"path": "../shard-00000.bin.br"'), 'IntegrityError', 'manifest.json'],
      ['tensor past its shard', (t) => t.replace('"offset": 0, "length": 1024', '"offset": 64, "length": 1024'), 'IntegrityError', 'manifest.json'],
      ['not UTF-8', (t) => t.replace('mkpkg.py', 'mkpkg\udcff'), 'IntegrityError', 'manifest.json'],
      ['format_version 2', (t) => t.replace('"format_version": 1', '"format_version": 2'), 'UnsupportedOpError', 'manifest.json'],
      ['zstd shard', (t) => t.replace('"codec": "brotli"', '"codec": "zstd"'), 'UnsupportedOpError', 'shard-00000.bin.br'],
    ];
    for (const [name, fn, cls, file] of cases) {
      const d = join(PKG, 'bad', `m-${name.replace(/\W+/g, '-')}`);
      rmSync(d, { recursive: true, force: true });
      cpSync(join(PKG, 'tiny'), d, { recursive: true });
      const t = readFileSync(join(d, 'manifest.json'), 'utf8');
      const t2 = fn(t);
      if (t2 === t) { fail(`signed manifest: ${name}`, 'the mutation did not apply'); continue; }
      writeFileSync(join(d, 'manifest.json'), name === 'not UTF-8' ? Buffer.from(t2.replace('\udcff', '\u0000'), 'utf8').map((b) => (b === 0 ? 0xff : b)) : t2);
      execFileSync('/usr/bin/python3', ['tests/web/mkpkg.py', '--resign', d, '--seed-file', join(PKG, 'seed2')]);
      await expectFailure(`signed manifest: ${name}`, `${cdn.url}/pkg/bad/${d.split('/').pop()}/`, cls, file, tkey);
    }
  }

  // ---- interrupted download resumes at the shard it stopped at --------------------
  if (want('resume')) {
    const s = await serve({ mounts: { '/pkg/': PKG } });
    const { ctx, page } = await newPage();
    try {
      const base = `${s.url}/pkg/fp32/`;
      const cut = shards[Math.floor(shards.length / 2)];
      s.faults.set(`/pkg/fp32/${cut}`, 'abort');
      const r1 = await tryLoad(page, base);
      const c1 = await cached(page, base);
      check(!r1.ok && r1.name === 'NetworkError' && r1.file === cut, `broken connection: ${r1.name} names ${r1.file}`, JSON.stringify(r1));
      s.faults.clear();
      const before = s.log.length;
      const r2 = await tryLoad(page, base);
      const fetched = s.log.slice(before).filter((e) => e.path.includes('shard-')).map((e) => e.path.split('/').pop());
      const reused = shards.filter((f) => c1.includes(base + f));
      check(r2.ok && reused.length > 0 && fetched.length === shards.length - reused.length && !fetched.some((f) => reused.includes(f)),
        `resumed: ${reused.length} shards from the cache, ${fetched.length} fetched`,
        `ok ${r2.ok} ${r2.message || ''}; reused ${reused.length}, fetched ${fetched.join(' ')}`);
    } finally {
      await ctx.close();
      await s.close();
    }
  }

  // ---- offline: stop the server, reload, run from the cache --------------------------
  if (want('offline')) {
    const s = await serve({ mounts: { '/pkg/': PKG } });
    const { ctx, page } = await newPage();
    try {
      const base = `${s.url}/pkg/int8/`;
      const ids = Array.from({ length: 128 }, (_, i) => 32 + (i * 7) % 90);
      const r1 = await tryLoad(page, base);
      const a = r1.ok ? await page.evaluate((x) => window.runIds(x, 1, 128, 1), ids) : null;
      await s.close();
      await page.reload();
      await page.waitForFunction(() => window.harnessReady);
      const r2 = await tryLoad(page, base);
      const b = r2.ok ? await page.evaluate((x) => window.runIds(x, 1, 128, 1), ids) : null;
      check(r1.ok && r2.ok && a && b && a.every((x, i) => x === b[i]),
        `offline reload: runs from the cache with the server stopped (same logits, ${r2.ms?.toFixed(0)} ms)`,
        `first ${r1.ok || r1.message}, offline ${r2.ok || `${r2.name}: ${r2.message}`}`);
      const r3 = await tryLoad(page, `${s.url}/pkg/int4/`);
      check(!r3.ok && r3.name === 'NetworkError', `offline, never loaded: ${r3.name}`, JSON.stringify(r3));
    } finally {
      await ctx.close();
    }
  }
} catch (e) {
  fail('browser tests', e.stack || e.message);
} finally {
  await browser.close();
  await app.close();
  await cdn.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
