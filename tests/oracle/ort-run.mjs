#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime, the reference for skiff's engine.
//
// usage: node tests/oracle/ort-run.mjs MODEL [options]
//   MODEL                  a .onnx file, or a folder holding model.onnx
//   --input NAME=FILE      an input from .npy or .pb (repeatable); FILE alone: the input its
//                          TensorProto names, else the next model input in order
//   --output-dir DIR       write each output as DIR/<name>.npy (characters outside
//                          [A-Za-z0-9._-] in the name become '_')
//   --test-data DIR        an ONNX test_data_set folder (input_N.pb, output_N.pb), or a folder
//                          of test_data_set_*: run and compare with output_N.pb, printing max
//                          abs/rel error per output; exit 1 when outside the tolerance
//   --rtol R --atol A      tolerance: |ort - expected| <= atol + rtol*|expected| (1e-3, 1e-5)
//   --bench N              time N runs after warm-up; prints exactly one line on stdout:
//                          "median X ms  min Y ms" (everything else goes to stderr)
//   --warmup K             warm-up runs before timing (default 3)
//   --threads T            intra-op threads (default 1); with --web, wasm threads
//   --web                  use onnxruntime-web's wasm backend (in Node) instead of onnxruntime-node;
//                          with --bench the wasm is compiled by V8's optimizing tier up front
//                          (--no-liftoff), so the timings are the steady state after tier-up
//   --opt LEVEL            graph optimization: disabled, basic, extended, all (default all)
//   --quiet                print only failures and the bench line
// Inputs whose dtype differs from the model's (say int32 .npy for an int64 input) are cast,
// with a note on stderr. Exit status: 0 ok, 1 outside tolerance, 2 usage or runtime error.
import fs from 'node:fs';
import path from 'node:path';
import { readTensorFile, writeNpy, castTensor } from './npy.mjs';
import { createSession, ioInfo, runSession } from './ort-common.mjs';
import { compareTensors, formatResult, DEFAULT_RTOL, DEFAULT_ATOL } from './compare.mjs';

const USAGE = `usage: node tests/oracle/ort-run.mjs MODEL [--input NAME=FILE ...] [--output-dir DIR]
         [--test-data DIR] [--rtol R] [--atol A] [--bench N] [--warmup K] [--threads T]
         [--web] [--opt disabled|basic|extended|all] [--quiet]`;

class UsageError extends Error {}

function parseArgs(argv) {
  const o = { inputs: [], rtol: DEFAULT_RTOL, atol: DEFAULT_ATOL, threads: 1, warmup: 3, web: false, optLevel: 'all', quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`); return argv[++i]; };
    const num = (int) => { const s = val(), v = Number(s); if (Number.isNaN(v) || (int && (!Number.isInteger(v) || v < 0))) throw new UsageError(`${a}: bad number '${s}'`); return v; };
    switch (a) {
      case '--input': case '-i': o.inputs.push(val()); break;
      case '--output-dir': case '-o': o.outputDir = val(); break;
      case '--test-data': o.testData = val(); break;
      case '--rtol': o.rtol = num(); break;
      case '--atol': o.atol = num(); break;
      case '--bench': o.bench = num(true); if (o.bench < 1) throw new UsageError('--bench needs N >= 1'); break;
      case '--warmup': o.warmup = num(true); break;
      case '--threads': o.threads = num(true); if (o.threads < 1) throw new UsageError('--threads needs T >= 1'); break;
      case '--web': o.web = true; break;
      case '--opt': o.optLevel = val(); if (!['disabled', 'basic', 'extended', 'all'].includes(o.optLevel)) throw new UsageError(`--opt: unknown level ${o.optLevel}`); break;
      case '--quiet': case '-q': o.quiet = true; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
        if (o.model) throw new UsageError(`unexpected argument ${a}`);
        o.model = a;
    }
  }
  if (!o.model) throw new UsageError('no model given');
  if (o.testData && o.inputs.length) throw new UsageError('give either --input or --test-data');
  return o;
}

const safeName = (n) => n.replace(/[^A-Za-z0-9._-]/g, '_') || '_';
const shapeStr = (t) => `[${t.shape.join(',')}] ${t.dtype}`;

// Casts each input to the dtype the model declares, if known and different.
function fitInputs(inputs, info, log) {
  const types = Object.fromEntries(info.map((x) => [x.name, x.type]));
  for (const [name, t] of Object.entries(inputs)) {
    const want = types[name];
    if (want && want !== t.dtype) {
      log(`note: input ${name}: casting ${t.dtype} to ${want}`);
      inputs[name] = castTensor(t, want);
    }
  }
  return inputs;
}

function inputsFromArgs(specs, info) {
  const names = info.map((x) => x.name);
  const inputs = {};
  let next = 0;
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    let name, t;
    if (eq > 0 && names.includes(spec.slice(0, eq))) { name = spec.slice(0, eq); t = readTensorFile(spec.slice(eq + 1)); }
    else if (eq > 0 && !fs.existsSync(spec)) throw new Error(`--input ${spec}: the model has no input '${spec.slice(0, eq)}' (inputs: ${names.join(', ')})`);
    else {
      t = readTensorFile(spec);
      if (t.name && names.includes(t.name) && !(t.name in inputs)) name = t.name; // a .pb naming its input
      else {
        while (next < names.length && names[next] in inputs) next++;
        if (next >= names.length) throw new Error(`--input ${spec}: more inputs than the model has (${names.join(', ')})`);
        name = names[next];
      }
    }
    if (name in inputs) throw new Error(`input ${name} given twice`);
    inputs[name] = t;
  }
  const missing = info.filter((x) => !(x.name in inputs));
  if (missing.length) {
    throw new Error('missing inputs: ' + missing.map((x) => `${x.name} (${x.type ?? '?'} [${(x.shape ?? []).join(',')}])`).join(', ') +
      '; give them with --input NAME=FILE');
  }
  return inputs;
}

// test_data_set folder: input_N.pb by TensorProto name when it names a model input, else by N;
// output_N.pb likewise against the model outputs.
function loadTestData(dir, inInfo, outInfo) {
  const files = fs.readdirSync(dir);
  const pick = (prefix, names, what) => {
    const list = files.map((f) => new RegExp(`^${prefix}_(\\d+)\\.pb$`).exec(f)).filter(Boolean)
      .map((m) => ({ n: Number(m[1]), file: path.join(dir, m[0]) })).sort((a, b) => a.n - b.n);
    const out = {};
    for (const { n, file } of list) {
      const t = readTensorFile(file);
      let name = names.includes(t.name) ? t.name : names[n];
      if (name === undefined) throw new Error(`${file}: the model has only ${names.length} ${what}s (${names.join(', ')})`);
      if (name in out) throw new Error(`${file}: ${what} ${name} given twice in ${dir}`);
      out[name] = t;
    }
    return out;
  };
  const inputs = pick('input', inInfo.map((x) => x.name), 'input');
  const expected = pick('output', outInfo.map((x) => x.name), 'output');
  if (!Object.keys(expected).length) throw new Error(`${dir}: no output_N.pb files`);
  return { inputs, expected };
}

function testDataDirs(dir) {
  if (fs.readdirSync(dir).some((f) => /^input_\d+\.pb$/.test(f) || /^output_\d+\.pb$/.test(f))) return [dir];
  const sets = fs.readdirSync(dir).filter((f) => /^test_data_set_\d+$/.test(f)).sort().map((f) => path.join(dir, f));
  if (!sets.length) throw new Error(`${dir}: neither a test_data_set folder nor a folder of test_data_set_*`);
  return sets;
}

function writeOutputs(dir, outputs, log) {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, t] of Object.entries(outputs)) {
    const file = path.join(dir, `${safeName(name)}.npy`);
    writeNpy(file, t);
    log(`${name}: ${shapeStr(t)} -> ${file}`);
  }
}

function preview(t) {
  const n = Math.min(6, t.data.length);
  const vals = Array.from(t.data.subarray(0, n), (v) => (typeof v === 'bigint' ? v.toString() : Number.isInteger(v) ? String(v) : v.toPrecision(6)));
  return vals.join(' ') + (t.data.length > n ? ' ...' : '');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const out = o.bench ? (...a) => console.error(...a) : (...a) => console.log(...a);
  const info = o.quiet ? () => {} : out;
  const { ort, backend, session, modelPath } = await createSession(o.model, {
    web: o.web, threads: o.threads, optLevel: o.optLevel, eagerWasm: Boolean(o.bench),
  });
  const inInfo = ioInfo(session, 'input'), outInfo = ioInfo(session, 'output');
  info(`model ${modelPath} (onnxruntime-${backend}, ${o.threads} thread${o.threads > 1 ? 's' : ''})`);
  let status = 0;
  let lastInputs;

  if (o.testData) {
    for (const dir of testDataDirs(o.testData)) {
      const { inputs, expected } = loadTestData(dir, inInfo, outInfo);
      fitInputs(inputs, inInfo, (m) => console.error(m));
      lastInputs = inputs;
      const outputs = await runSession(ort, session, inputs);
      if (o.outputDir) writeOutputs(o.outputDir, outputs, info);
      for (const [name, want] of Object.entries(expected)) {
        const r = compareTensors(outputs[name], want, { rtol: o.rtol, atol: o.atol, name: `${path.basename(dir)}/${name}` });
        if (!r.ok) status = 1;
        if (!o.quiet || !r.ok) out(formatResult(r));
      }
    }
    info(status ? 'FAIL: outside tolerance' : 'ok: all outputs within tolerance');
  } else {
    lastInputs = fitInputs(inputsFromArgs(o.inputs, inInfo), inInfo, (m) => console.error(m));
    if (!o.bench || o.outputDir) {
      const outputs = await runSession(ort, session, lastInputs);
      if (o.outputDir) writeOutputs(o.outputDir, outputs, info);
      else for (const [name, t] of Object.entries(outputs)) info(`${name}: ${shapeStr(t)}  ${preview(t)}`);
    }
  }

  if (o.bench) {
    const { toOrtTensor } = await import('./npy.mjs');
    const feeds = Object.fromEntries(Object.entries(lastInputs).map(([k, t]) => [k, toOrtTensor(ort, t)]));
    for (let i = 0; i < o.warmup; i++) await session.run(feeds);
    const times = [];
    for (let i = 0; i < o.bench; i++) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const m = times.length >> 1;
    const median = times.length % 2 ? times[m] : (times[m - 1] + times[m]) / 2;
    console.log(`median ${median.toFixed(3)} ms  min ${times[0].toFixed(3)} ms`);
  }
  if (session.release) await session.release();
  return status;
}

main().then((s) => { process.exitCode = s; }).catch((e) => {
  if (e instanceof UsageError) console.error(`ort-run.mjs: ${e.message}\n${USAGE}`);
  else console.error(`ort-run.mjs: ${e.message ?? e}`);
  process.exitCode = 2;
});
