// TypeScript declarations of skiff.mjs, skiff's browser runtime.

/** Element type names (ONNX's, numpy-like). */
export type TensorType =
  | 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16'
  | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool';

export type TensorData =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** An input: data in row-major order; `type` only where the array type is ambiguous
 * ('bool' and 'float16' for Uint8Array/Uint16Array). */
export interface TensorInput {
  data: TensorData;
  dims: readonly number[];
  type?: TensorType;
}

export interface TensorOutput {
  data: TensorData;
  dims: number[];
  type: TensorType;
}

export interface Progress {
  /** Bytes of the package's stored files received or read from the cache so far. Never decreases. */
  loaded: number;
  /** Sum of the stored sizes of every file in the manifest (0 during 'manifest'). The last event has loaded === total. */
  total: number;
  phase: 'manifest' | 'download' | 'cache' | 'ready';
}

export interface LoadOptions {
  /** The publisher's minisign public key: the `RW...` line of skiff.pub (or the whole file). Required. */
  publicKey: string;
  onProgress?: (p: Progress) => void;
  /** Keep verified files in the Cache API (offline reloads, resumed downloads). Default true. */
  cache?: boolean;
  /** Accept a manifest older than the newest one accepted for this model name and key. Default false. */
  allowDowngrade?: boolean;
  /** Time every operator (Model.profile). Default false. */
  profile?: boolean;
  /** Where skiff.wasm and skiff-worker.mjs are; default: next to skiff.mjs. */
  wasmUrl?: string;
  workerUrl?: string;
}

export interface ValueInfo {
  name: string;
  type: TensorType | null;
  /** null where a dimension is symbolic; null for the whole when the rank is unknown. */
  dims: (number | null)[] | null;
}

/** The verified manifest.json (docs/format.md section 3). */
export interface Manifest {
  format: 'skiff-package';
  format_version: 1;
  name: string;
  version: number;
  created: string;
  generator: string;
  model: {
    ir_version: number;
    opsets: { domain: string; version: number }[];
    inputs: { name: string; dtype: string | null; shape: (number | string | null)[] | null }[];
    outputs: { name: string; dtype: string | null; shape: (number | string | null)[] | null }[];
  };
  shard_size: number;
  alignment: number;
  files: {
    path: string; role: 'model' | 'shard'; codec: 'none' | 'brotli' | 'zstd'; size: number; sha256: string;
    integrity: string; raw_path: string; raw_size: number; raw_sha256: string; raw_integrity: string;
  }[];
  tensors: { name: string; shard: string; offset: number; length: number; dtype: string; shape: number[] }[];
}

export class Model {
  readonly manifest: Manifest;
  readonly name: string;
  readonly version: number;
  readonly inputs: ValueInfo[];
  readonly outputs: string[];
  /** Runs inference in the model's Web Worker (calls are queued, one at a time). */
  run(feeds: Record<string, TensorInput>): Promise<Record<string, TensorOutput>>;
  /** An onnxruntime-web InferenceSession over the same verified bytes (`externalData`). */
  toOrt(ort: unknown, sessionOptions?: Record<string, unknown>): Promise<any>;
  /** With `profile: true` at load: time per operator type over all runs, most expensive first. */
  profile(): Promise<{ op: string; calls: number; ms: number }[]>;
  /** Ends the worker and frees its memory; later calls reject. */
  dispose(): void;
}

/** Fetches, verifies and loads the package at `url` (a folder URL). */
export function load(url: string, options: LoadOptions): Promise<Model>;

/** Deletes skiff's cached files (and, with versions: true, the rollback records). */
export function clearCache(options?: { versions?: boolean }): Promise<void>;

export class SkiffError extends Error {
  /** The package file at fault (manifest.json, shard-00003.bin.br, ...), when there is one. */
  readonly file?: string;
}
/** Signature missing, malformed, or not verifying with publicKey. */
export class SignatureError extends SkiffError {}
/** A file's size or SHA-256 differs from the signed manifest, or it does not decode. */
export class IntegrityError extends SkiffError {}
/** The manifest's version is lower than one already accepted for this name and key. */
export class RollbackError extends SkiffError {}
/** A file could not be fetched and is not in the cache. */
export class NetworkError extends SkiffError {}
/** An operator (or codec, or format version) this runtime does not implement. */
export class UnsupportedOpError extends SkiffError {}
