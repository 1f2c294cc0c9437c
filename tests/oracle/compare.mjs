#!/usr/bin/env node
// Compares tensors: node tests/oracle/compare.mjs A B [--rtol R] [--atol A] [--quiet]
//   A, B: two .npy/.pb files, or two directories of .npy/.pb files with the same names.
//   B is the reference: an element passes when |a - b| <= atol + rtol * |b|
//   (NaN matches only NaN, an infinity only the same infinity).
// Prints per tensor: max abs error, max rel error (|a-b|/|b| over elements with b != 0),
// cosine similarity, the number of violating elements, and for 2-D float tensors
// (logits [N, C]) how many rows have the same argmax. Exit status 1 when any element
// violates the tolerance, shapes differ, or a tensor is missing on one side; 2 on bad usage.
// Defaults: --rtol 1e-3 --atol 1e-5.
//
// Also a module: compareTensors(a, b, opts) and formatResult(result).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readTensorFile, toFloat64 } from './npy.mjs';

export const DEFAULT_RTOL = 1e-3;
export const DEFAULT_ATOL = 1e-5;

const isFloat = (dt) => dt.startsWith('float');

// a: the tested tensor, b: the reference. Returns a result object (see formatResult).
export function compareTensors(a, b, { rtol = DEFAULT_RTOL, atol = DEFAULT_ATOL, name = b.name || a.name || '' } = {}) {
  const res = { name, dtypeA: a.dtype, dtypeB: b.dtype, shapeA: a.shape, shapeB: b.shape, rtol, atol };
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    res.ok = false;
    res.error = `shape mismatch: [${a.shape}] vs reference [${b.shape}]`;
    return res;
  }
  const x = toFloat64(a), y = toFloat64(b), n = x.length;
  let maxAbs = 0, maxRel = 0, dot = 0, nx = 0, ny = 0, violations = 0, worst = -1, worstExcess = -Infinity;
  for (let i = 0; i < n; i++) {
    const p = x[i], q = y[i];
    let bad, d;
    if (Number.isNaN(p) || Number.isNaN(q)) { bad = !(Number.isNaN(p) && Number.isNaN(q)); d = bad ? Infinity : 0; }
    else if (!Number.isFinite(p) || !Number.isFinite(q)) { bad = p !== q; d = bad ? Infinity : 0; }
    else {
      d = Math.abs(p - q);
      bad = d > atol + rtol * Math.abs(q);
      if (d > maxAbs) maxAbs = d;
      if (q !== 0 && d / Math.abs(q) > maxRel) maxRel = d / Math.abs(q);
      dot += p * q; nx += p * p; ny += q * q;
    }
    if (bad) {
      violations++;
      const excess = d - (atol + rtol * Math.abs(q));
      if (excess > worstExcess || worst < 0) { worstExcess = excess; worst = i; }
      if (!Number.isFinite(d)) maxAbs = Infinity;
    }
  }
  res.n = n; res.maxAbs = maxAbs; res.maxRel = maxRel; res.violations = violations;
  res.cosine = nx === 0 && ny === 0 ? 1 : nx === 0 || ny === 0 ? 0 : dot / Math.sqrt(nx * ny);
  if (worst >= 0) {
    const idx = []; let r = worst;
    for (let k = b.shape.length - 1; k >= 0; k--) { idx.unshift(r % b.shape[k]); r = Math.floor(r / b.shape[k]); }
    res.worst = { index: idx, a: x[worst], b: y[worst] };
  }
  if (b.shape.length === 2 && b.shape[1] > 1 && isFloat(a.dtype) && isFloat(b.dtype)) {
    const [rows, cols] = b.shape;
    let agree = 0;
    for (let i = 0; i < rows; i++) {
      let ia = 0, ib = 0;
      for (let j = 1; j < cols; j++) {
        if (x[i * cols + j] > x[i * cols + ia]) ia = j;
        if (y[i * cols + j] > y[i * cols + ib]) ib = j;
      }
      if (ia === ib) agree++;
    }
    res.argmax = { agree, rows };
  }
  res.ok = violations === 0;
  return res;
}

const g = (v) => (v === 0 ? '0' : Number.isFinite(v) ? v.toExponential(3) : String(v));

export function formatResult(r) {
  const head = `${r.name || '(tensor)'}: [${r.shapeB}] ${r.dtypeA === r.dtypeB ? r.dtypeB : `${r.dtypeA} vs ${r.dtypeB}`}`;
  if (r.error) return `${head}  FAIL ${r.error}`;
  let s = `${head}  max_abs ${g(r.maxAbs)}  max_rel ${g(r.maxRel)}  cosine ${r.cosine.toFixed(6)}  violations ${r.violations}/${r.n}`;
  if (r.argmax) s += `  argmax ${r.argmax.agree}/${r.argmax.rows}`;
  s += r.ok ? '  ok' : `  FAIL (atol ${r.atol}, rtol ${r.rtol})`;
  if (r.worst) s += `\n  worst at [${r.worst.index}]: got ${r.worst.a}, reference ${r.worst.b}`;
  return s;
}

const tensorFiles = (dir) => fs.readdirSync(dir).filter((f) => /\.(npy|pb)$/i.test(f)).sort();

function usage(msg) {
  if (msg) console.error(`compare.mjs: ${msg}`);
  console.error('usage: node tests/oracle/compare.mjs A B [--rtol R] [--atol A] [--quiet]\n' +
    '  A, B: .npy/.pb files or directories of them (B is the reference)');
  process.exit(2);
}

function main(argv) {
  const pos = []; let rtol = DEFAULT_RTOL, atol = DEFAULT_ATOL, quiet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => { const v = Number(argv[++i]); if (argv[i] === undefined || Number.isNaN(v)) usage(`${a} needs a number`); return v; };
    if (a === '--rtol') rtol = num();
    else if (a === '--atol') atol = num();
    else if (a === '--quiet' || a === '-q') quiet = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 2) usage('need two files or two directories');
  const [A, B] = pos;
  const pairs = [];
  let failed = 0;
  const dirA = fs.statSync(A).isDirectory(), dirB = fs.statSync(B).isDirectory();
  if (dirA !== dirB) usage('give two files or two directories');
  if (dirA) {
    const fa = tensorFiles(A), fb = new Set(tensorFiles(B));
    if (!fa.length && !fb.size) usage(`no .npy/.pb files in ${A} or ${B}`);
    for (const f of fa) {
      if (fb.has(f)) pairs.push([path.join(A, f), path.join(B, f), f.replace(/\.(npy|pb)$/i, '')]);
      else { console.log(`${f}: FAIL only in ${A}`); failed++; }
      fb.delete(f);
    }
    for (const f of fb) { console.log(`${f}: FAIL only in ${B}`); failed++; }
  } else pairs.push([A, B, path.basename(B).replace(/\.(npy|pb)$/i, '')]);
  for (const [pa, pb, name] of pairs) {
    const r = compareTensors(readTensorFile(pa), readTensorFile(pb), { rtol, atol, name });
    if (!r.ok) failed++;
    if (!quiet || !r.ok) console.log(formatResult(r));
  }
  if (pairs.length > 1 || failed) console.log(`${pairs.length} compared, ${failed} failed`);
  return failed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  try { process.exitCode = main(process.argv.slice(2)); } catch (e) { console.error(`compare.mjs: ${e.message}`); process.exitCode = 2; }
}
