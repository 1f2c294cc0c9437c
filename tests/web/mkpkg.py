#!/usr/bin/python3
"""Test helper: writes a skiff package (docs/format.md, format_version 1) from an
ONNX model, signed with a test key, for the browser tests when skiff-pack is not
built. It follows the format's layout (first-use order, 64-byte alignment,
shard_size, brotli per shard via the brotli CLI, strict manifest) closely enough
for the runtime; skiff-pack remains the reference writer.

usage: mkpkg.py MODEL OUTDIR --seed-file F [--name N] [--version V] [--shard-size BYTES]
       [--codec brotli|none] [--external-min BYTES]
       mkpkg.py --pubkey --seed-file F      prints the RW... public key string
       mkpkg.py --resign OUTDIR --seed-file F   re-signs OUTDIR/manifest.json
Needs Debian's python3-onnx and python3-cryptography (Ed25519).
"""
import argparse
import base64
import hashlib
import os
import subprocess
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def key_from_seed(path):
    seed = open(path, 'rb').read()[:32]
    if len(seed) != 32:
        sys.exit('mkpkg: seed file needs 32 bytes')
    return Ed25519PrivateKey.from_private_bytes(seed)


def pubkey_string(key):
    from cryptography.hazmat.primitives import serialization
    pk = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(pk).digest()[:8]
    return base64.b64encode(b'Ed' + key_id + pk).decode()


def sign(outdir, key):
    data = open(os.path.join(outdir, 'manifest.json'), 'rb').read()
    sig = key.sign(data)
    with open(os.path.join(outdir, 'manifest.json.sig'), 'w') as f:
        f.write(base64.b64encode(sig).decode() + '\n')


def sri(b):
    return 'sha384-' + base64.b64encode(hashlib.sha384(b).digest()).decode()


DTYPES = {1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool',
          10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16', 21: 'uint4', 22: 'int4'}


def jstr(s):
    out = '"'
    for c in s:
        if c in '"\\':
            out += '\\' + c
        elif ord(c) < 0x20:
            out += '\\u%04x' % ord(c)
        else:
            out += c
    return out + '"'


def value_json(v):
    t = v.type.tensor_type
    dt = DTYPES.get(t.elem_type) if v.type.HasField('tensor_type') else None
    if not v.type.HasField('tensor_type') or not t.HasField('shape'):
        shape = 'null'
    else:
        dims = []
        for d in t.shape.dim:
            if d.HasField('dim_value'):
                dims.append(str(d.dim_value))
            elif d.HasField('dim_param'):
                dims.append(jstr(d.dim_param))
            else:
                dims.append('null')
        shape = '[' + ', '.join(dims) + ']'
    return '{"name": %s, "dtype": %s, "shape": %s}' % (jstr(v.name), jstr(dt) if dt else 'null', shape)


def pack(args, key):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(args.model)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    order, seen = [], set()
    for n in g.node:
        for i in n.input:
            if i in inits and i not in seen:
                seen.add(i)
                order.append(i)
    order += [t.name for t in g.initializer if t.name not in seen]
    shards, cur, tensors = [], bytearray(), []
    for name in order:
        t = inits[name]
        raw = numpy_helper.to_array(t).tobytes() if not t.raw_data else t.raw_data
        if len(raw) < args.external_min or t.data_type == 8:
            continue
        off = (len(cur) + 63) // 64 * 64
        if off + len(raw) > args.shard_size and len(cur) > 0:
            shards.append(bytes(cur))
            cur, off = bytearray(), 0
        cur += b'\0' * (off - len(cur))
        cur += raw
        sname = 'shard-%05d.bin' % len(shards)
        tensors.append((name, sname, off, len(raw), DTYPES[t.data_type], list(t.dims)))
        t.ClearField('raw_data')
        for f in ('float_data', 'int32_data', 'int64_data', 'double_data', 'uint64_data'):
            t.ClearField(f)
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        for k, v in (('location', sname), ('offset', str(off)), ('length', str(len(raw)))):
            e = t.external_data.add()
            e.key, e.value = k, v
    if cur:
        shards.append(bytes(cur))
    os.makedirs(args.outdir, exist_ok=True)
    files = []
    mbytes = m.SerializeToString()
    open(os.path.join(args.outdir, 'model.onnx'), 'wb').write(mbytes)
    files.append(('model.onnx', 'model', 'none', mbytes, 'model.onnx', mbytes))
    for i, raw in enumerate(shards):
        rp = 'shard-%05d.bin' % i
        if args.codec == 'brotli':
            win = max(10, min(24, (len(raw) - 1).bit_length()))
            st = subprocess.run(['brotli', '-c', '-q', '9', '-w', str(win)], input=raw, capture_output=True, check=True).stdout
            if len(st) < len(raw):
                files.append((rp + '.br', 'shard', 'brotli', st, rp, raw))
                continue
        files.append((rp, 'shard', 'none', raw, rp, raw))
    for path, _, _, st, _, _ in files:
        open(os.path.join(args.outdir, path), 'wb').write(st)
    L = ['{', '  "format": "skiff-package",', '  "format_version": 1,',
         '  "name": %s,' % jstr(args.name), '  "version": %d,' % args.version,
         '  "created": "2026-11-23T00:00:00Z",', '  "generator": "skiff tests/web/mkpkg.py",', '  "model": {',
         '    "ir_version": %d,' % m.ir_version, '    "opsets": [']
    L.append(',\n'.join('      {"domain": %s, "version": %d}' % (jstr(o.domain), o.version) for o in m.opset_import))
    L.append('    ],')
    gin = [v for v in g.input if v.name not in inits]
    L.append('    "inputs": [')
    L.append(',\n'.join('      ' + value_json(v) for v in gin))
    L.append('    ],')
    L.append('    "outputs": [')
    L.append(',\n'.join('      ' + value_json(v) for v in g.output))
    L.append('    ]')
    L.append('  },')
    L.append('  "shard_size": %d,' % args.shard_size)
    L.append('  "alignment": 64,')
    L.append('  "files": [')
    fl = []
    for path, role, codec, st, rp, raw in files:
        fl.append('\n'.join([
            '    {', '      "path": %s,' % jstr(path), '      "role": "%s",' % role, '      "codec": "%s",' % codec,
            '      "size": %d,' % len(st), '      "sha256": "%s",' % hashlib.sha256(st).hexdigest(),
            '      "integrity": "%s",' % sri(st), '      "raw_path": %s,' % jstr(rp), '      "raw_size": %d,' % len(raw),
            '      "raw_sha256": "%s",' % hashlib.sha256(raw).hexdigest(), '      "raw_integrity": "%s"' % sri(raw), '    }']))
    L.append(',\n'.join(fl))
    L.append('  ],')
    L.append('  "tensors": [')
    L.append(',\n'.join('    {"name": %s, "shard": "%s", "offset": %d, "length": %d, "dtype": "%s", "shape": [%s]}' % (
        jstr(n), s, o, ln, dt, ', '.join(map(str, sh))) for n, s, o, ln, dt, sh in tensors))
    L.append('  ]')
    L.append('}')
    open(os.path.join(args.outdir, 'manifest.json'), 'w').write('\n'.join(x for x in L if x != '') + '\n')
    sign(args.outdir, key)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model', nargs='?')
    ap.add_argument('outdir', nargs='?')
    ap.add_argument('--seed-file', required=True)
    ap.add_argument('--name', default='model')
    ap.add_argument('--version', type=int, default=1)
    ap.add_argument('--shard-size', type=int, default=4 << 20)
    ap.add_argument('--external-min', type=int, default=1024)
    ap.add_argument('--codec', default='brotli')
    ap.add_argument('--pubkey', action='store_true')
    ap.add_argument('--resign')
    args = ap.parse_args()
    key = key_from_seed(args.seed_file)
    if args.pubkey:
        print(pubkey_string(key))
    elif args.resign:
        sign(args.resign, key)
    else:
        pack(args, key)


if __name__ == '__main__':
    main()
