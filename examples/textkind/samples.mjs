// Calibration and evaluation samples for the textkind classifier, the input
// `skiff build` needs to prune, quantize and check the demo's model.
//
//   node examples/textkind/samples.mjs collect [ROOT] > examples/textkind/samples.jsonl
//       cuts labelled snippets out of this repository's own files (C from
//       lib/ and cmd/, data from JSON/YAML files and the package.json files
//       of node_modules/, prose from docs/ and the README, Python from the
//       test helpers); run once, output committed,
//       so the demo's quality gate does not move with unrelated commits.
//   node examples/textkind/samples.mjs expand samples.jsonl OUTDIR
//       writes OUTDIR/calib/sample_NN/{input_ids,attention_mask}.npy (one
//       snippet each, [1, 128]) and OUTDIR/eval/batch_NN/ (32 snippets each,
//       [32, 128]) and OUTDIR/eval-labels.npy (the class of every eval row).
//
// The model reads a snippet's first 128 bytes (input_ids: the bytes, then 0;
// attention_mask: 1 for each byte, then 0). Classes: 0 C, 1 data, 2 prose,
// 3 Python.
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SEQ = 128;
const CLASSES = ['C', 'data', 'prose', 'Python'];

function files(root, dir, re) {
  let out = [];
  let names;
  try { names = readdirSync(join(root, dir)).sort(); } catch { return out; }
  for (const n of names) {
    const p = join(dir, n);
    const st = statSync(join(root, p));
    if (st.isDirectory()) out = out.concat(files(root, p, re));
    else if (re.test(n)) out.push(p);
  }
  return out;
}

// Snippets of at most 128 UTF-8 bytes starting at line starts, `per` from
// each file, spread evenly over it.
function snippets(root, paths, per) {
  const out = [];
  for (const p of paths) {
    const text = readFileSync(join(root, p), 'utf8');
    const starts = [];
    for (let i = 0; i < text.length; i = text.indexOf('\n', i) + 1 || text.length) {
      if (text.slice(i, i + 40).trim().length >= 20) starts.push(i);
    }
    for (let k = 0; k < per && starts.length; k++) {
      const i = starts[Math.floor(((k + 0.5) * starts.length) / per)];
      let s = text.slice(i, i + SEQ);
      while (Buffer.byteLength(s) > SEQ) s = s.slice(0, -1);
      out.push(s);
    }
  }
  return out;
}

function collect(root) {
  const sources = {
    C: files(root, 'lib', /\.[ch]$/).concat(files(root, 'cmd', /\.c$/)),
    data: ['package.json', 'package-lock.json'].concat(files(root, 'examples', /\.(ya?ml|json|toml)$/),
      readdirSync(join(root, 'node_modules')).sort().map((n) => join('node_modules', n, 'package.json'))),
    prose: ['README.md'].concat(files(root, 'docs', /\.md$/)),
    Python: files(root, 'tests', /\.py$/),
  };
  const want = 96; // per class: 16 calibration + 80 evaluation
  const lines = [];
  CLASSES.forEach((name, label) => {
    const paths = sources[name].filter((p) => { try { return statSync(join(root, p)).isFile(); } catch { return false; } });
    const per = Math.ceil((want * 2) / Math.max(paths.length, 1));
    const all = snippets(root, paths, per);
    // an even spread over everything collected, without duplicates
    const seen = new Set(), picked = [];
    for (let k = 0; picked.length < want && k < all.length * 2; k++) {
      const s = all[Math.floor((k * all.length) / want) % all.length];
      if (!seen.has(s)) { seen.add(s); picked.push(s); }
    }
    for (const text of picked) lines.push(JSON.stringify({ label, text }));
  });
  process.stdout.write(lines.join('\n') + '\n');
}

function npy(path, data, shape) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<i8', 'fortran_order': False, 'shape': (${dims}), }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header += ' '.repeat(total - 10 - header.length - 1) + '\n';
  const out = Buffer.alloc(total + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, total);
  writeFileSync(path, out);
}

function encode(texts) {
  const ids = new BigInt64Array(texts.length * SEQ), mask = new BigInt64Array(texts.length * SEQ);
  texts.forEach((t, r) => {
    const b = Buffer.from(t, 'utf8').subarray(0, SEQ);
    for (let i = 0; i < b.length; i++) { ids[r * SEQ + i] = BigInt(b[i]); mask[r * SEQ + i] = 1n; }
  });
  return { ids, mask };
}

function expand(jsonl, outdir) {
  const rows = readFileSync(jsonl, 'utf8').split('\n').filter(Boolean).map((l, i) => {
    const r = JSON.parse(l);
    if (!Number.isInteger(r.label) || r.label < 0 || r.label >= CLASSES.length || typeof r.text !== 'string') {
      throw new Error(`${jsonl}:${i + 1}: expected {"label": 0-3, "text": "..."}`);
    }
    return r;
  });
  // per class: the first 16 snippets calibrate, the rest evaluate
  const calib = [], evalRows = [];
  CLASSES.forEach((_, label) => {
    const mine = rows.filter((r) => r.label === label);
    const nc = Math.min(16, Math.floor(mine.length / 3));
    calib.push(...mine.slice(0, nc));
    evalRows.push(...mine.slice(nc));
  });
  rmSync(outdir, { recursive: true, force: true });
  calib.forEach((r, i) => {
    const d = join(outdir, 'calib', `sample_${String(i).padStart(3, '0')}`);
    mkdirSync(d, { recursive: true });
    const { ids, mask } = encode([r.text]);
    npy(join(d, 'input_ids.npy'), ids, [1, SEQ]);
    npy(join(d, 'attention_mask.npy'), mask, [1, SEQ]);
  });
  const B = 32;
  for (let i = 0; i * B < evalRows.length; i++) {
    const part = evalRows.slice(i * B, (i + 1) * B);
    const d = join(outdir, 'eval', `batch_${String(i).padStart(3, '0')}`);
    mkdirSync(d, { recursive: true });
    const { ids, mask } = encode(part.map((r) => r.text));
    npy(join(d, 'input_ids.npy'), ids, [part.length, SEQ]);
    npy(join(d, 'attention_mask.npy'), mask, [part.length, SEQ]);
  }
  npy(join(outdir, 'eval-labels.npy'), BigInt64Array.from(evalRows, (r) => BigInt(r.label)), [evalRows.length]);
  console.error(`samples: ${calib.length} calibration, ${evalRows.length} evaluation rows in ${outdir}`);
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'collect') collect(a || '.');
else if (cmd === 'expand' && a && b) expand(a, b);
else {
  console.error('usage: samples.mjs collect [ROOT] > samples.jsonl | samples.mjs expand samples.jsonl OUTDIR');
  process.exit(2);
}
