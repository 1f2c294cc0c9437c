// Shared by the oracle scripts: loading onnxruntime-node or onnxruntime-web (wasm backend,
// in Node), creating sessions (external data included), locating the shared test models.
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { modelExternalDataFiles, toOrtTensor, fromOrtTensor } from './npy.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_MODELS = process.env.SK_SHARED_MODELS || path.join(REPO_ROOT, '..', 'shared', 'models');

// A model argument may be a .onnx file or a folder holding model.onnx.
export function resolveModel(p) {
  if (fs.existsSync(p) && fs.statSync(p).isDirectory()) p = path.join(p, 'model.onnx');
  if (!fs.existsSync(p)) throw new Error(`model not found: ${p}`);
  return p;
}

// Returns { ort, backend } for onnxruntime-node ('node') or onnxruntime-web ('web', wasm).
// eagerWasm (for benchmarks): compile the wasm with V8's optimizing tier up front
// (--no-liftoff) instead of tiering up while running, which otherwise takes dozens of runs
// and inflates the median; the numbers are then the steady state a page reaches.
export async function loadOrt({ web = false, threads = 1, eagerWasm = false } = {}) {
  if (web) {
    if (eagerWasm) v8.setFlagsFromString('--no-liftoff');
    const mod = await import('onnxruntime-web');
    const ort = mod.default ?? mod;
    ort.env.logLevel = 'error';
    ort.env.wasm.numThreads = threads;   // 1: no worker threads, the browser default without COOP/COEP
    ort.env.wasm.proxy = false;
    return { ort, backend: 'web' };
  }
  const mod = await import('onnxruntime-node');
  const ort = mod.default ?? mod;
  return { ort, backend: 'node' };
}

// Creates an InferenceSession. opts: web, threads (intra-op, default 1), optLevel
// ('disabled' | 'basic' | 'extended' | 'all', default 'all'), eagerWasm (see loadOrt).
export async function createSession(modelPath, { web = false, threads = 1, optLevel = 'all', eagerWasm = false } = {}) {
  modelPath = resolveModel(modelPath);
  const { ort, backend } = await loadOrt({ web, threads, eagerWasm });
  const options = {
    graphOptimizationLevel: optLevel,
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  let session;
  if (web) {
    options.executionProviders = ['wasm'];
    const bytes = fs.readFileSync(modelPath);
    const files = modelExternalDataFiles(bytes);
    if (files.length) {
      const dir = path.dirname(modelPath);
      options.externalData = files.map((f) => {
        const p = path.join(dir, f);
        if (!fs.existsSync(p)) throw new Error(`${modelPath}: external data file ${f} is missing (looked for ${p})`);
        return { path: f, data: new Uint8Array(fs.readFileSync(p)) };
      });
    }
    session = await ort.InferenceSession.create(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), options);
  } else {
    options.intraOpNumThreads = threads;
    options.interOpNumThreads = 1;
    options.executionProviders = ['cpu'];
    // from the path, so that onnxruntime finds external data next to the model
    session = await ort.InferenceSession.create(modelPath, options);
  }
  return { ort, backend, session, modelPath };
}

// Model input/output descriptions: [{ name, type, shape }] (type/shape may be undefined).
export function ioInfo(session, which) {
  const names = which === 'input' ? session.inputNames : session.outputNames;
  const meta = which === 'input' ? session.inputMetadata : session.outputMetadata;
  return names.map((name, i) => {
    let m = Array.isArray(meta) ? meta[i] : meta?.[name];
    if (m && m.name !== undefined && m.name !== name) m = Array.isArray(meta) ? meta.find((x) => x.name === name) : m;
    return { name, type: m?.type, shape: m?.shape };
  });
}

// Runs the session on plain tensors ({ dtype, shape, data }) keyed by input name; returns
// plain output tensors keyed by output name, in the model's output order.
export async function runSession(ort, session, inputs) {
  const feeds = {};
  for (const [name, t] of Object.entries(inputs)) feeds[name] = toOrtTensor(ort, t);
  const res = await session.run(feeds);
  const out = {};
  for (const name of session.outputNames) out[name] = fromOrtTensor(res[name], name);
  return out;
}

export function argmaxRows(logits) {
  const [rows, cols] = logits.shape;
  const out = new Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let j = 1; j < cols; j++) if (logits.data[i * cols + j] > logits.data[i * cols + best]) best = j;
    out[i] = best;
  }
  return out;
}
