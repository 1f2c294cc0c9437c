// Checks npy.mjs against numpy/onnx fixtures made by tests/data/make-npy-fixtures.py:
//   node tests/oracle/npy-selftest.mjs DIR
// reads every fixture in DIR/manifest.json and compares with the values numpy wrote, checks
// that the bad files are rejected with a clear message, then writes each tensor back (as .npy
// and as .pb) and lists them in DIR/written.json for `make-npy-fixtures.py --check DIR`.
import fs from 'node:fs';
import path from 'node:path';
import { readTensorFile, writeNpy, writeTensorProto, halfToFloat, floatToHalf } from './npy.mjs';

const dir = process.argv[2];
if (!dir) { console.error('usage: node tests/oracle/npy-selftest.mjs DIR'); process.exit(2); }
const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
let bad = 0;
const fail = (msg) => { console.log(`FAIL ${msg}`); bad++; };

const written = [];
for (const m of manifest.tensors) {
  let t;
  try { t = readTensorFile(path.join(dir, m.file)); } catch (e) { fail(`${m.file}: ${e.message}`); continue; }
  if (t.dtype !== m.dtype) { fail(`${m.file}: dtype ${t.dtype}, expected ${m.dtype}`); continue; }
  if (JSON.stringify(t.shape) !== JSON.stringify(m.shape)) { fail(`${m.file}: shape [${t.shape}], expected [${m.shape}]`); continue; }
  if (m.file.endsWith('.pb') && t.name !== m.name) fail(`${m.file}: name '${t.name}', expected '${m.name}'`);
  const got = Array.from(t.data, (v) => (t.dtype === 'float16' ? halfToFloat(v) : typeof v === 'bigint' ? v.toString() : v));
  const want = m.values.map((v) => (t.dtype === 'float32' ? Math.fround(v) : v));
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) {
      fail(`${m.file}: element ${i} is ${got[i]}, expected ${want[i]}`);
      break;
    }
  }
  if (t.dtype === 'float16') {
    for (const h of t.data) if (floatToHalf(halfToFloat(h)) !== h) { fail(`float16 round trip of 0x${h.toString(16)}`); break; }
  }
  const base = `out_${m.file.replace(/\.(npy|pb)$/, '')}`;
  writeNpy(path.join(dir, `${base}.npy`), t);
  writeTensorProto(path.join(dir, `${base}.pb`), { ...t, name: `w_${base}` });
  written.push({ ...m, file: `${base}.npy` }, { ...m, file: `${base}.pb`, name: `w_${base}` });
}
for (const r of manifest.rejects) {
  try {
    readTensorFile(path.join(dir, r.file));
    fail(`${r.file}: was accepted, should be rejected (${r.error})`);
  } catch (e) {
    if (!e.message.includes(r.error)) fail(`${r.file}: rejected with '${e.message}', expected a message about '${r.error}'`);
  }
}
fs.writeFileSync(path.join(dir, 'written.json'), JSON.stringify(written));
console.log(`npy.mjs read ${manifest.tensors.length} fixtures and rejected ${manifest.rejects.length} bad files: ${bad ? `${bad} failures` : 'ok'}`);
process.exit(bad ? 1 : 0);
