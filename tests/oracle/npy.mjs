// Tensor files for the ONNX Runtime oracle: NumPy .npy and ONNX TensorProto .pb.
//
// A tensor here is a plain object { dtype, shape, data, name? }:
//   dtype  onnxruntime's type name: float32 float64 float16 int64 int32 int16 int8
//          uint8 uint16 uint32 uint64 bool
//   shape  array of Numbers (C order; [] for a scalar)
//   data   the typed array onnxruntime uses for that type: Float32Array, Float64Array,
//          Uint16Array (float16 bits), BigInt64Array, Int32Array, Int16Array, Int8Array,
//          Uint8Array, Uint16Array, Uint32Array, BigUint64Array, Uint8Array (bool, 0/1)
//
// Exports: readNpy, parseNpy, writeNpy, encodeNpy, readTensorProto, parseTensorProto,
// writeTensorProto, encodeTensorProto, readTensorFile, writeTensorFile,
// toOrtTensor, fromOrtTensor, toFloat64, castTensor, dtypeInfo, DTYPES, halfToFloat, floatToHalf,
// ProtoReader (a small protobuf wire-format reader), modelExternalDataFiles.
// .pb parsing is a hand-rolled protobuf decoder (onnxruntime-node/web expose no public
// onnx protobuf bindings); it handles packed and unpacked repeated fields.

import fs from 'node:fs';

// dtype -> npy descr (without byte order), typed array, element size, ONNX data_type.
export const DTYPES = {
  float32: { npy: 'f4', Array: Float32Array, size: 4, onnx: 1 },
  float64: { npy: 'f8', Array: Float64Array, size: 8, onnx: 11 },
  float16: { npy: 'f2', Array: Uint16Array, size: 2, onnx: 10 },
  int64: { npy: 'i8', Array: BigInt64Array, size: 8, onnx: 7 },
  int32: { npy: 'i4', Array: Int32Array, size: 4, onnx: 6 },
  int16: { npy: 'i2', Array: Int16Array, size: 2, onnx: 5 },
  int8: { npy: 'i1', Array: Int8Array, size: 1, onnx: 3 },
  uint8: { npy: 'u1', Array: Uint8Array, size: 1, onnx: 2 },
  uint16: { npy: 'u2', Array: Uint16Array, size: 2, onnx: 4 },
  uint32: { npy: 'u4', Array: Uint32Array, size: 4, onnx: 12 },
  uint64: { npy: 'u8', Array: BigUint64Array, size: 8, onnx: 13 },
  bool: { npy: 'b1', Array: Uint8Array, size: 1, onnx: 9 },
};
const NPY_TO_DTYPE = Object.fromEntries(Object.entries(DTYPES).map(([k, v]) => [v.npy, k]));
NPY_TO_DTYPE['?'] = 'bool';
const ONNX_TO_DTYPE = Object.fromEntries(Object.entries(DTYPES).map(([k, v]) => [v.onnx, k]));
const ONNX_TYPE_NAMES = {
  0: 'UNDEFINED', 1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32',
  7: 'INT64', 8: 'STRING', 9: 'BOOL', 10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64',
  14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16', 17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2', 20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4',
};

export function dtypeInfo(dtype) {
  const info = DTYPES[dtype];
  if (!info) throw new Error(`unsupported dtype '${dtype}' (supported: ${Object.keys(DTYPES).join(', ')})`);
  return info;
}

const numel = (shape) => shape.reduce((a, b) => a * b, 1);
const toBytes = (src) => (src instanceof Uint8Array ? src : new Uint8Array(src));

// Copies `nbytes` bytes at `offset` of `u8` into a fresh (aligned) typed array.
function typedFromBytes(dtype, u8, offset, count, swap = false) {
  const { Array: A, size } = dtypeInfo(dtype);
  const nbytes = count * size;
  if (offset + nbytes > u8.length) throw new Error(`truncated data: need ${nbytes} bytes at offset ${offset}, file has ${u8.length - offset}`);
  const copy = new Uint8Array(nbytes); // a copy: aligned, and never a view of a Buffer pool
  copy.set(u8.subarray(offset, offset + nbytes));
  if (swap && size > 1) {
    for (let i = 0; i < nbytes; i += size) copy.subarray(i, i + size).reverse();
  }
  return new A(copy.buffer, 0, count);
}

function checkTensor(t) {
  const info = dtypeInfo(t.dtype);
  if (!Array.isArray(t.shape)) throw new Error('tensor shape must be an array');
  const n = numel(t.shape);
  if (!(t.data instanceof info.Array)) throw new Error(`${t.dtype} tensor needs a ${info.Array.name}, got ${t.data?.constructor?.name}`);
  if (t.data.length !== n) throw new Error(`tensor data has ${t.data.length} elements, shape [${t.shape}] needs ${n}`);
  return info;
}

// ---------------------------------------------------------------- .npy

// Parses the Python dict literal of an .npy header.
function parseNpyHeader(text) {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  if (!descr) {
    if (/'descr'\s*:\s*\[/.test(text)) throw new Error('structured (record) dtypes are not supported');
    throw new Error(`bad .npy header: ${text.trim()}`);
  }
  const fo = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!fo || !shape) throw new Error(`bad .npy header: ${text.trim()}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map((s) => {
    const v = Number(s.replace(/L$/, ''));
    if (!Number.isInteger(v) || v < 0) throw new Error(`bad .npy shape: (${shape[1]})`);
    return v;
  });
  return { descr: descr[1], fortran: fo[1] === 'True', shape: dims };
}

export function parseNpy(buf, what = '.npy data') {
  const u8 = toBytes(buf);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (u8.length < 10 || magic.some((b, i) => u8[i] !== b)) throw new Error(`${what}: not an .npy file (bad magic)`);
  const major = u8[6];
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let hlen, hstart;
  if (major === 1) { hlen = dv.getUint16(8, true); hstart = 10; }
  else if (major === 2 || major === 3) { hlen = dv.getUint32(8, true); hstart = 12; }
  else throw new Error(`${what}: unsupported .npy format version ${major}.${u8[7]}`);
  if (hstart + hlen > u8.length) throw new Error(`${what}: truncated .npy header`);
  const decoder = new TextDecoder(major === 3 ? 'utf-8' : 'latin1');
  const hdr = parseNpyHeader(decoder.decode(u8.subarray(hstart, hstart + hlen)));
  if (hdr.fortran) {
    throw new Error(`${what}: Fortran-order (column-major) arrays are not supported; ` +
      'save a C-order array, e.g. np.save(path, np.ascontiguousarray(a))');
  }
  let order = hdr.descr[0], code = hdr.descr;
  if ('<>|='.includes(order)) code = hdr.descr.slice(1); else order = '=';
  const dtype = NPY_TO_DTYPE[code];
  if (!dtype) throw new Error(`${what}: unsupported .npy dtype '${hdr.descr}' (supported: f4 f8 f2 i8 i4 i2 i1 u1 u2 u4 u8 b1)`);
  const swap = order === '>' && DTYPES[dtype].size > 1;
  const data = typedFromBytes(dtype, u8, hstart + hlen, numel(hdr.shape), swap);
  return { dtype, shape: hdr.shape, data };
}

export function readNpy(path) {
  return parseNpy(fs.readFileSync(path), path);
}

export function encodeNpy(t) {
  const info = checkTensor(t);
  const descr = (info.size === 1 ? '|' : '<') + info.npy;
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // version 1 unless the header does not fit in 65535 bytes (then version 2)
  let major = 1, pre = 10;
  if (header.length + 1 + pre > 0xffff) { major = 2; pre = 12; }
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = header + ' '.repeat(total - pre - header.length - 1) + '\n';
  const body = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint8Array(total + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, header.length, true); else dv.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[pre + i] = header.charCodeAt(i);
  out.set(body, total);
  return out;
}

export function writeNpy(path, t) {
  fs.writeFileSync(path, encodeNpy(t));
}

// ---------------------------------------------------------------- protobuf

// Minimal protobuf wire-format reader over a Uint8Array.
export class ProtoReader {
  constructor(u8, start = 0, end = u8.length) {
    this.u8 = u8; this.pos = start; this.end = end;
  }
  done() { return this.pos >= this.end; }
  // varint as BigInt (exact, unsigned 64-bit)
  varintBig() {
    let result = 0n, shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const b = this.u8[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new Error('protobuf: varint longer than 10 bytes');
  }
  // varint as Number (exact below 2^53; for tags, lengths and small values)
  varint() {
    let result = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const b = this.u8[this.pos++];
      result += (b & 0x7f) * mul;
      if (!(b & 0x80)) return result;
      mul *= 128;
    }
    throw new Error('protobuf: varint longer than 10 bytes');
  }
  int64() { return BigInt.asIntN(64, this.varintBig()); }
  int32() { return Number(BigInt.asIntN(32, this.varintBig())); }
  tag() { const t = this.varint(); return { field: Math.floor(t / 8), wire: t & 7 }; }
  bytes() {
    const n = this.varint();
    if (this.pos + n > this.end) throw new Error('protobuf: truncated length-delimited field');
    const s = this.pos; this.pos += n;
    return this.u8.subarray(s, s + n);
  }
  sub() { const n = this.varint(); const r = new ProtoReader(this.u8, this.pos, this.pos + n); if (r.end > this.end) throw new Error('protobuf: truncated message'); this.pos += n; return r; }
  string() { return new TextDecoder().decode(this.bytes()); }
  fixed32() { const v = new DataView(this.u8.buffer, this.u8.byteOffset + this.pos, 4); this.pos += 4; return v; }
  fixed64() { const v = new DataView(this.u8.buffer, this.u8.byteOffset + this.pos, 8); this.pos += 8; return v; }
  skip(wire) {
    switch (wire) {
      case 0: this.varintBig(); break;
      case 1: this.pos += 8; break;
      case 2: { const n = this.varint(); this.pos += n; break; }
      case 5: this.pos += 4; break;
      default: throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new Error('protobuf: truncated field');
  }
  // repeated scalar field, packed (wire 2) or not: calls fn(reader) per element
  repeated(wire, elemWire, fn) {
    if (wire === 2) { const r = this.sub(); while (!r.done()) fn(r); }
    else if (wire === elemWire) fn(this);
    else throw new Error(`protobuf: unexpected wire type ${wire}`);
  }
}

class ProtoWriter {
  constructor() { this.parts = []; this.len = 0; }
  push(u8) { this.parts.push(u8); this.len += u8.length; }
  varint(v) {
    let x = BigInt.asUintN(64, BigInt(v));
    const out = [];
    do { let b = Number(x & 0x7fn); x >>= 7n; if (x) b |= 0x80; out.push(b); } while (x);
    this.push(Uint8Array.from(out));
  }
  tag(field, wire) { this.varint(field * 8 + wire); }
  bytes(field, u8) { this.tag(field, 2); this.varint(u8.length); this.push(u8); }
  finish() { const out = new Uint8Array(this.len); let o = 0; for (const p of this.parts) { out.set(p, o); o += p.length; } return out; }
}

// ---------------------------------------------------------------- TensorProto

export function parseTensorProto(buf, what = 'TensorProto') {
  const r = new ProtoReader(toBytes(buf));
  const dims = [];
  let dataType = 0, name = '', raw = null, external = false;
  const f32 = [], i32 = [], i64 = [], f64 = [], u64 = [];
    while (!r.done()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1: r.repeated(wire, 0, (x) => dims.push(Number(x.int64()))); break;
      case 2: dataType = r.int32(); break;
      case 4:
        if (wire === 2) { const b = r.bytes(); const dv = new DataView(b.buffer, b.byteOffset, b.length); for (let i = 0; i + 4 <= b.length; i += 4) f32.push(dv.getFloat32(i, true)); }
        else r.repeated(wire, 5, (x) => f32.push(x.fixed32().getFloat32(0, true)));
        break;
      case 5: r.repeated(wire, 0, (x) => i32.push(x.int32())); break;
      case 6: r.skip(wire); break; // string_data
      case 7: r.repeated(wire, 0, (x) => i64.push(x.int64())); break;
      case 8: name = r.string(); break;
      case 9: raw = r.bytes(); break;
      case 10: r.repeated(wire, 1, (x) => f64.push(x.fixed64().getFloat64(0, true))); break;
      case 11: r.repeated(wire, 0, (x) => u64.push(x.varintBig())); break;
      case 13: external = true; r.skip(wire); break;
      case 14: if (wire === 0) { external = r.int32() === 1 || external; } else r.skip(wire); break;
      default: r.skip(wire);
    }
  }
  const dtype = ONNX_TO_DTYPE[dataType];
  if (!dtype) {
    throw new Error(`${what}: unsupported TensorProto data_type ${dataType} (${ONNX_TYPE_NAMES[dataType] ?? '?'})` +
      (dataType === 0 ? ' (or not a TensorProto: sequence, optional and map values are not supported)' : ''));
  }
  if (external) throw new Error(`${what}: tensor '${name}' keeps its data in an external file (not supported here)`);
  const n = numel(dims);
  const { Array: A } = DTYPES[dtype];
  let data;
  if (raw) {
    data = typedFromBytes(dtype, raw, 0, n);
    if (raw.length !== data.byteLength) throw new Error(`${what}: raw_data has ${raw.length} bytes, [${dims}] ${dtype} needs ${data.byteLength}`);
  } else {
    let src;
    if (dtype === 'float32') src = f32;
    else if (dtype === 'float64') src = f64;
    else if (dtype === 'int64') src = i64;
    else if (dtype === 'uint32' || dtype === 'uint64') src = u64;
    else src = i32; // int32 int16 int8 uint16 uint8 bool float16 (bits)
    if (src.length !== n) {
      throw new Error(`${what}: tensor '${name}' has ${src.length} values, shape [${dims}] needs ${n}` +
        ' (or this is not a TensorProto: sequence, optional and map values are not supported)');
    }
    data = new A(n);
    for (let i = 0; i < n; i++) {
      const v = src[i];
      if (dtype === 'uint64') data[i] = BigInt.asUintN(64, v);
      else if (dtype === 'int64') data[i] = v;
      else data[i] = typeof v === 'bigint' ? Number(v) : v;
    }
  }
  return { name, dtype, shape: dims, data };
}

export function readTensorProto(path) {
  return parseTensorProto(fs.readFileSync(path), path);
}

// Encodes as ONNX's numpy_helper.from_array does: dims, data_type, name, raw_data.
export function encodeTensorProto(t) {
  const info = checkTensor(t);
  const w = new ProtoWriter();
  if (t.shape.length) {
    const d = new ProtoWriter();
    for (const x of t.shape) d.varint(x);
    w.bytes(1, d.finish());
  }
  w.tag(2, 0); w.varint(info.onnx);
  if (t.name) w.bytes(8, new TextEncoder().encode(t.name));
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w.finish();
}

export function writeTensorProto(path, t) {
  fs.writeFileSync(path, encodeTensorProto(t));
}

// ---------------------------------------------------------------- by extension

export function readTensorFile(path) {
  if (/\.npy$/i.test(path)) return readNpy(path);
  if (/\.pb$/i.test(path)) return readTensorProto(path);
  // sniff
  const u8 = fs.readFileSync(path);
  if (u8[0] === 0x93 && u8[1] === 0x4e) return parseNpy(u8, path);
  return parseTensorProto(u8, path);
}

export function writeTensorFile(path, t) {
  if (/\.pb$/i.test(path)) writeTensorProto(path, t); else writeNpy(path, t);
}

// ---------------------------------------------------------------- onnxruntime

// `ort` is the onnxruntime-node or onnxruntime-web module.
export function toOrtTensor(ort, t) {
  checkTensor(t);
  return new ort.Tensor(t.dtype, t.data, t.shape);
}

export function fromOrtTensor(ot, name) {
  let data = ot.data;
  const dtype = ot.type;
  const info = dtypeInfo(dtype);
  if (dtype === 'float16' && !(data instanceof Uint16Array)) {
    // a Float16Array (newer runtimes): keep the bits
    data = new Uint16Array(data.buffer, data.byteOffset, data.length);
  }
  if (dtype === 'bool' && !(data instanceof Uint8Array)) data = Uint8Array.from(data, (v) => (v ? 1 : 0));
  if (!(data instanceof info.Array)) data = info.Array.from(data);
  return { name, dtype, shape: Array.from(ot.dims, Number), data };
}

// ---------------------------------------------------------------- numbers

const f32buf = new Float32Array(1), u32buf = new Uint32Array(f32buf.buffer);
export function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
export function floatToHalf(x) { // round to nearest even
  f32buf[0] = x; const b = u32buf[0];
  const s = (b >>> 16) & 0x8000, e = (b >>> 23) & 0xff, m = b & 0x7fffff;
  if (e === 0xff) return s | 0x7c00 | (m ? 0x200 : 0);
  const ee = e - 127 + 15;
  if (ee >= 31) return s | 0x7c00;
  if (ee <= 0) {
    if (ee < -10) return s;
    const mm = m | 0x800000, shift = 14 - ee;
    let r = mm >> shift; const rem = mm & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return s | r;
  }
  let r = (ee << 10) | (m >> 13); const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return s | r;
}

// Values of any tensor as a Float64Array (float16 decoded, 64-bit ints via Number).
export function toFloat64(t) {
  const n = t.data.length, out = new Float64Array(n), d = t.data;
  if (t.dtype === 'float16') for (let i = 0; i < n; i++) out[i] = halfToFloat(d[i]);
  else if (t.dtype === 'int64' || t.dtype === 'uint64') for (let i = 0; i < n; i++) out[i] = Number(d[i]);
  else out.set(d);
  return out;
}

// Converts a tensor to another dtype (numeric value conversion; float16 via its value).
export function castTensor(t, dtype) {
  if (t.dtype === dtype) return t;
  const { Array: A } = dtypeInfo(dtype);
  const v = toFloat64(t), n = v.length, out = new A(n);
  if (dtype === 'int64' || dtype === 'uint64') {
    if (t.dtype === 'int64' || t.dtype === 'uint64') for (let i = 0; i < n; i++) out[i] = dtype === 'int64' ? BigInt.asIntN(64, t.data[i]) : BigInt.asUintN(64, t.data[i]);
    else for (let i = 0; i < n; i++) out[i] = BigInt(Math.trunc(v[i]));
  } else if (dtype === 'float16') for (let i = 0; i < n; i++) out[i] = floatToHalf(v[i]);
  else if (dtype === 'bool') for (let i = 0; i < n; i++) out[i] = v[i] ? 1 : 0;
  else out.set(v);
  return { ...t, dtype, data: out };
}

// ---------------------------------------------------------------- models

// Files named by external-data tensors of a ModelProto (initializers, Constant/attribute
// tensors, subgraphs), as relative paths. Used to hand them to onnxruntime-web.
export function modelExternalDataFiles(buf) {
  const files = new Set();
  const tensor = (r) => {
    let loc = null, external = false;
    while (!r.done()) {
      const { field, wire } = r.tag();
      if (field === 13 && wire === 2) { // StringStringEntryProto
        const e = r.sub(); let k = '', v = '';
        while (!e.done()) { const t = e.tag(); if (t.field === 1) k = e.string(); else if (t.field === 2) v = e.string(); else e.skip(t.wire); }
        if (k === 'location') loc = v;
      } else if (field === 14 && wire === 0) external = r.int32() === 1;
      else r.skip(wire);
    }
    if (external && loc) files.add(loc);
  };
  const attribute = (r) => {
    while (!r.done()) {
      const { field, wire } = r.tag();
      if (field === 5 && wire === 2) tensor(r.sub());
      else if (field === 6 && wire === 2) graph(r.sub());
      else if (field === 10 && wire === 2) tensor(r.sub());
      else if (field === 11 && wire === 2) graph(r.sub());
      else r.skip(wire);
    }
  };
  const node = (r) => {
    while (!r.done()) {
      const { field, wire } = r.tag();
      if (field === 5 && wire === 2) attribute(r.sub()); else r.skip(wire);
    }
  };
  const sparse = (r) => { // SparseTensorProto: values(1), indices(2)
    while (!r.done()) {
      const { field, wire } = r.tag();
      if ((field === 1 || field === 2) && wire === 2) tensor(r.sub()); else r.skip(wire);
    }
  };
  const graph = (r) => {
    while (!r.done()) {
      const { field, wire } = r.tag();
      if (field === 1 && wire === 2) node(r.sub());
      else if (field === 5 && wire === 2) tensor(r.sub());
      else if (field === 15 && wire === 2) sparse(r.sub());
      else r.skip(wire);
    }
  };
  const r = new ProtoReader(toBytes(buf));
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 7 && wire === 2) graph(r.sub());
    else if (field === 25 && wire === 2) { // FunctionProto: node(7)
      const f = r.sub();
      while (!f.done()) { const t = f.tag(); if (t.field === 7 && t.wire === 2) node(f.sub()); else f.skip(t.wire); }
    } else r.skip(wire);
  }
  return [...files];
}
