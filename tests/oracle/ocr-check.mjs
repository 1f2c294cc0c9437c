#!/usr/bin/env node
// Runs the PaddleOCR models on the inputs of make-ocr-inputs.py and says whether ONNX Runtime
// reads them as intended (a sanity check that the inputs are realistic):
//   node tests/oracle/ocr-check.mjs DIR [--web] [--models MODELDIR] [--output-dir OUT]
// det: mean text probability inside the text boxes vs. outside; rec: greedy CTC decoding with
// ppocr_keys_v1.txt vs. the rendered text; cls: predicted label ("0" or "180") vs. expected.
// --output-dir writes every output as OUT/<input file> (e.g. OUT/rec_0.npy), for tests that
// compare skiff's outputs with ORT's. Exit 1 when a det/cls expectation fails or a rec line
// is not read exactly; 2 on errors.
import fs from 'node:fs';
import path from 'node:path';
import { readNpy, writeNpy } from './npy.mjs';
import { createSession, runSession, REPO_ROOT } from './ort-common.mjs';

const argv = process.argv.slice(2);
const opt = (name) => { const i = argv.indexOf(name); if (i < 0) return undefined; const v = argv[i + 1]; argv.splice(i, 2); return v; };
const web = argv.includes('--web'); if (web) argv.splice(argv.indexOf('--web'), 1);
const modelDir = opt('--models') ?? path.join(REPO_ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');
const outDir = opt('--output-dir');
const dir = argv[0];
if (!dir || argv.length !== 1) {
  console.error('usage: node tests/oracle/ocr-check.mjs DIR [--web] [--models MODELDIR] [--output-dir OUT]');
  process.exit(2);
}

async function main() {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const keys = fs.readFileSync(path.join(modelDir, 'ppocr_keys_v1.txt'), 'utf8').split(/\r?\n/);
  if (keys[keys.length - 1] === '') keys.pop();
  const charset = ['', ...keys, ' ']; // CTC blank first, space last (use_space_char)
  const sessions = {};
  let failed = 0;
  if (outDir) fs.mkdirSync(outDir, { recursive: true });
  for (const m of manifest) {
    sessions[m.model] ??= await createSession(path.join(modelDir, m.model), { web });
    const { ort, session } = sessions[m.model];
    const x = readNpy(path.join(dir, m.file));
    const out = await runSession(ort, session, { [session.inputNames[0]]: x });
    const y = out[session.outputNames[0]];
    if (outDir) writeNpy(path.join(outDir, m.file), y);
    let line, ok;
    if (m.model.includes('_det_')) {
      const [, , h, w] = y.shape;
      const inBox = new Uint8Array(h * w);
      for (const [x0, y0, x1, y1] of m.boxes_xyxy) {
        for (let r = Math.max(0, y0); r < Math.min(h, y1); r++) for (let c = Math.max(0, x0); c < Math.min(w, x1); c++) inBox[r * w + c] = 1;
      }
      let si = 0, ni = 0, so = 0, no = 0;
      for (let i = 0; i < h * w; i++) if (inBox[i]) { si += y.data[i]; ni++; } else { so += y.data[i]; no++; }
      const pin = si / ni, pout = so / no;
      ok = pin > 0.3 && pout < 0.05;
      line = `det: text probability ${pin.toFixed(3)} inside ${m.boxes_xyxy.length} boxes, ${pout.toFixed(4)} outside`;
    } else if (m.model.includes('_rec_')) {
      const [, steps, classes] = y.shape;
      let text = '', prev = -1, conf = 0, nconf = 0;
      for (let t = 0; t < steps; t++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (y.data[t * classes + c] > y.data[t * classes + best]) best = c;
        if (best !== 0 && best !== prev) { text += charset[best] ?? '?'; conf += y.data[t * classes + best]; nconf++; }
        prev = best;
      }
      ok = text.trim() === m.text; // padding may read as a trailing space
      line = `rec: read "${text}" (confidence ${(nconf ? conf / nconf : 0).toFixed(3)}), rendered "${m.text}"`;
    } else {
      const label = y.data[1] > y.data[0] ? '180' : '0';
      ok = label === m.label;
      line = `cls: label ${label} (p=${Math.max(y.data[0], y.data[1]).toFixed(3)}), expected ${m.label}`;
    }
    if (!ok) failed++;
    console.log(`${m.file} [${x.shape}] ${line}  ${ok ? 'ok' : 'MISMATCH'}`);
  }
  console.log(`${manifest.length - failed}/${manifest.length} OCR inputs read as intended`);
  return failed ? 1 : 0;
}

main().then((s) => { process.exitCode = s; }).catch((e) => { console.error(`ocr-check.mjs: ${e.message ?? e}`); process.exitCode = 2; });
