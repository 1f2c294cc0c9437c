#!/usr/bin/env node
// Accuracy of the shared BERT byte classifier on its held-out set, with ONNX Runtime.
//
// usage: node tests/oracle/bert-accuracy.mjs [MODEL] [--web] [--batch N] [--threads T]
//                                            [--data DIR] [--logits-out FILE.npy]
//   MODEL         default: DIR/model.onnx
//   --data DIR    folder with eval_input_ids.npy (N x 128 int64) and eval_labels.npy (N int64);
//                 default ../shared/models/bert_bytes_cls (relative to the repo root;
//                 env SK_SHARED_MODELS overrides ../shared/models)
//   --batch N     rows per session.run (default 32); attention_mask is all ones
//   --logits-out  write all logits as one [N, 4] float32 .npy
// Prints one line, e.g. "accuracy 0.9224 (428/464)". Exit status 2 on errors.
import fs from 'node:fs';
import path from 'node:path';
import { readNpy, writeNpy, toFloat64 } from './npy.mjs';
import { createSession, ioInfo, runSession, argmaxRows, SHARED_MODELS } from './ort-common.mjs';

const USAGE = 'usage: node tests/oracle/bert-accuracy.mjs [MODEL] [--web] [--batch N] [--threads T] [--data DIR] [--logits-out FILE.npy]';

function parseArgs(argv) {
  const o = { web: false, batch: 32, threads: 1, data: path.join(SHARED_MODELS, 'bert_bytes_cls') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    const int = () => { const v = Number(val()); if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`); return v; };
    if (a === '--web') o.web = true;
    else if (a === '--batch') o.batch = int();
    else if (a === '--threads') o.threads = int();
    else if (a === '--data') o.data = val();
    else if (a === '--logits-out') o.logitsOut = val();
    else if (a === '-h' || a === '--help') { console.log(USAGE); process.exit(0); }
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}\n${USAGE}`);
    else if (o.model) throw new Error(`unexpected argument ${a}\n${USAGE}`);
    else o.model = a;
  }
  o.model ??= path.join(o.data, 'model.onnx');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ids = readNpy(path.join(o.data, 'eval_input_ids.npy'));
  const labels = toFloat64(readNpy(path.join(o.data, 'eval_labels.npy')));
  if (ids.shape.length !== 2 || ids.shape[0] !== labels.length) {
    throw new Error(`eval_input_ids [${ids.shape}] and eval_labels [${labels.length}] do not match`);
  }
  const [n, seq] = ids.shape;
  const { ort, session } = await createSession(o.model, { web: o.web, threads: o.threads });
  const inTypes = Object.fromEntries(ioInfo(session, 'input').map((x) => [x.name, x.type]));
  for (const need of ['input_ids', 'attention_mask']) {
    if (!(need in inTypes)) throw new Error(`${o.model}: no input '${need}' (inputs: ${session.inputNames.join(', ')})`);
  }
  const outName = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];
  const ids64 = ids.dtype === 'int64' ? ids.data : BigInt64Array.from(toFloat64(ids), (v) => BigInt(v));
  let correct = 0, classes = 0;
  const all = [];
  for (let start = 0; start < n; start += o.batch) {
    const b = Math.min(o.batch, n - start);
    const data = ids64.slice(start * seq, (start + b) * seq);
    const mask = new BigInt64Array(b * seq).fill(1n);
    const out = await runSession(ort, session, {
      input_ids: { dtype: 'int64', shape: [b, seq], data },
      attention_mask: { dtype: 'int64', shape: [b, seq], data: mask },
    });
    const logits = out[outName];
    if (logits.shape.length !== 2 || logits.shape[0] !== b) throw new Error(`output ${outName} has shape [${logits.shape}], expected [${b}, C]`);
    classes = logits.shape[1];
    const pred = argmaxRows(logits);
    for (let i = 0; i < b; i++) if (pred[i] === labels[start + i]) correct++;
    all.push(logits.dtype === 'float32' ? logits.data : Float32Array.from(toFloat64(logits)));
  }
  if (o.logitsOut) {
    const flat = new Float32Array(n * classes);
    let off = 0;
    for (const a of all) { flat.set(a, off); off += a.length; }
    fs.mkdirSync(path.dirname(path.resolve(o.logitsOut)), { recursive: true });
    writeNpy(o.logitsOut, { dtype: 'float32', shape: [n, classes], data: flat });
  }
  console.log(`accuracy ${(correct / n).toFixed(4)} (${correct}/${n})`);
}

main().catch((e) => { console.error(`bert-accuracy.mjs: ${e.message ?? e}`); process.exitCode = 2; });
