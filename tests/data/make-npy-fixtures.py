#!/usr/bin/python3
"""Tensor-file fixtures for tests/oracle/npy.mjs (run with /usr/bin/python3: needs numpy
and onnx, Debian's python3-numpy and python3-onnx).

usage: make-npy-fixtures.py OUTDIR           write fixtures + OUTDIR/manifest.json
       make-npy-fixtures.py --check DIR      verify files listed in DIR/written.json
                                             (written by npy-selftest.mjs) with numpy/onnx

Fixtures: every supported dtype as .npy (format versions 1, 2 and 3, a big-endian one, a
scalar, an empty array), as TensorProto .pb with raw_data and with the typed repeated fields,
and files that must be rejected (Fortran order, unsupported dtype)."""
import json, os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

DTYPES = {  # ort name -> numpy dtype, onnx data_type
    "float32": (np.float32, TensorProto.FLOAT), "float64": (np.float64, TensorProto.DOUBLE),
    "float16": (np.float16, TensorProto.FLOAT16), "int64": (np.int64, TensorProto.INT64),
    "int32": (np.int32, TensorProto.INT32), "int16": (np.int16, TensorProto.INT16),
    "int8": (np.int8, TensorProto.INT8), "uint8": (np.uint8, TensorProto.UINT8),
    "uint16": (np.uint16, TensorProto.UINT16), "uint32": (np.uint32, TensorProto.UINT32),
    "uint64": (np.uint64, TensorProto.UINT64), "bool": (np.bool_, TensorProto.BOOL),
}


def sample(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == "bool":
        a = rng.integers(0, 2, n).astype(np.bool_)
    elif dtype.startswith("float"):
        a = (rng.standard_normal(n) * 10).astype(DTYPES[dtype][0])
        if n >= 4:
            a[:4] = [0.0, -0.0, 1.5, -65504.0 if dtype == "float16" else -1e30]
    else:
        info = np.iinfo(DTYPES[dtype][0])
        a = rng.integers(0, 200, n).astype(DTYPES[dtype][0])
        if n >= 2:
            a[0], a[1] = info.min, info.max
    return a.reshape(shape)


def to_json(a):
    flat = a.reshape(-1)
    if a.dtype in (np.int64, np.uint64):
        return [str(int(v)) for v in flat]
    if a.dtype == np.bool_:
        return [int(v) for v in flat]
    return [float(v) for v in flat]


def make(out):
    os.makedirs(out, exist_ok=True)
    manifest = []

    def add(fname, a, name=""):
        manifest.append({"file": fname, "dtype": str_dtype(a), "shape": list(a.shape),
                         "values": to_json(a), "name": name})

    for i, (dt, (npdt, onnx_t)) in enumerate(DTYPES.items()):
        a = sample(dt, (2, 3, 4), i)
        for ver in (1, 2, 3):
            fname = f"{dt}_v{ver}.npy"
            with open(os.path.join(out, fname), "wb") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(a), version=(ver, 0))
            add(fname, a)
        t = numpy_helper.from_array(a, name=f"t_{dt}")  # raw_data
        open(os.path.join(out, f"{dt}_raw.pb"), "wb").write(t.SerializeToString())
        add(f"{dt}_raw.pb", a, f"t_{dt}")
        # typed repeated fields (float_data, int32_data, int64_data, double_data, uint64_data)
        if dt == "float16":
            vals = a.reshape(-1).view(np.uint16).astype(np.int32).tolist()
            t = TensorProto(name=f"f_{dt}", data_type=onnx_t, dims=list(a.shape))
            t.int32_data.extend(vals)
        else:
            t = helper.make_tensor(f"f_{dt}", onnx_t, a.shape, a.reshape(-1).tolist())
        open(os.path.join(out, f"{dt}_fields.pb"), "wb").write(t.SerializeToString())
        add(f"{dt}_fields.pb", a, f"f_{dt}")

    a = sample("float32", (3, 5), 99)
    np.save(os.path.join(out, "float32_bigendian.npy"), a.astype(">f4"))
    add("float32_bigendian.npy", a)
    a = sample("int32", (7,), 98)
    np.save(os.path.join(out, "int32_bigendian.npy"), a.astype(">i4"))
    add("int32_bigendian.npy", a)
    a = np.array(3.25, np.float32)
    np.save(os.path.join(out, "scalar.npy"), a)
    add("scalar.npy", a)
    a = np.zeros((0, 4), np.float32)
    np.save(os.path.join(out, "empty.npy"), a)
    add("empty.npy", a)
    a = sample("float32", (5,), 97)
    np.save(os.path.join(out, "vector.npy"), a)
    add("vector.npy", a)

    np.save(os.path.join(out, "bad_fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    np.save(os.path.join(out, "bad_complex.npy"), np.zeros(3, np.complex64))
    rejects = [{"file": "bad_fortran.npy", "error": "Fortran"},
               {"file": "bad_complex.npy", "error": "unsupported .npy dtype"}]
    json.dump({"tensors": manifest, "rejects": rejects}, open(os.path.join(out, "manifest.json"), "w"))
    print(f"wrote {len(manifest) + len(rejects)} fixtures to {out}")


def str_dtype(a):
    for k, (npdt, _) in DTYPES.items():
        if a.dtype == np.dtype(npdt):
            return k
    raise SystemExit(f"no dtype for {a.dtype}")


def check(d):
    written = json.load(open(os.path.join(d, "written.json")))
    bad = 0
    for w in written:
        path = os.path.join(d, w["file"])
        if path.endswith(".npy"):
            a = np.load(path)
        else:
            t = TensorProto()
            t.ParseFromString(open(path, "rb").read())
            a = numpy_helper.to_array(t)
            if t.name != w["name"]:
                print(f"FAIL {w['file']}: name {t.name!r} != {w['name']!r}")
                bad += 1
        npdt = DTYPES[w["dtype"]][0]
        if npdt in (np.int64, np.uint64):
            want = np.array([int(v) for v in w["values"]], dtype=npdt)
        else:
            want = np.array(w["values"], dtype=np.float64).astype(npdt)
        want = want.reshape(w["shape"])
        if a.dtype != np.dtype(npdt) or a.shape != want.shape or not np.array_equal(a, want):
            print(f"FAIL {w['file']}: numpy reads {a.dtype} {a.shape}, expected {w['dtype']} {tuple(w['shape'])}")
            bad += 1
    print(f"numpy/onnx read {len(written) - bad}/{len(written)} files written by npy.mjs")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    elif len(sys.argv) == 2 and not sys.argv[1].startswith("-"):
        make(sys.argv[1])
    else:
        sys.exit(__doc__)
