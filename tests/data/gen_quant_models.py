#!/usr/bin/python3
"""Writes one-node models for the quantized ops that ONNX's node tests do not
cover (com.microsoft MatMulNBits, GatherBlockQuantized, DynamicQuantizeMatMul,
MatMulIntegerToFloat; opset-21 blocked and int4 QuantizeLinear and
DequantizeLinear; per-channel MatMulInteger and QLinearMatMul), each as a
folder in ONNX's test-case layout:

    OUT/<case>/model.onnx
    OUT/<case>/test_data_set_0/input_N.pb

tests/oracle/quant-ort.sh runs every case in ONNX Runtime and then skiff's
kernels on the same inputs (build/tests/test_ops_quant with SK_QUANT_CASES).

Runs on Debian's onnx 1.12 (/usr/bin/python3): it predates int4 and opset 21,
so int4 tensors are written by hand (TensorProto.data_type is a plain int32)
and the checker is never run.

usage: /usr/bin/python3 tests/data/gen_quant_models.py OUT
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INT4, UINT4 = 22, 21
MS = "com.microsoft"
rng = np.random.default_rng(20261123)


def tensor(name, arr):
    return numpy_helper.from_array(np.ascontiguousarray(arr), name)


def tensor_4bit(name, values, signed):
    """A packed int4/uint4 TensorProto from an array of small ints."""
    flat = np.asarray(values).reshape(-1).astype(np.int64) & 15
    if flat.size % 2:
        flat = np.concatenate([flat, [0]])
    packed = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)
    t = TensorProto()
    t.name = name
    t.data_type = INT4 if signed else UINT4
    t.dims.extend(np.shape(values))
    t.raw_data = packed.tobytes()
    return t


def pack_bits(q, bits):
    """Packs the last axis of q (values < 2**bits) low bits first."""
    per = 8 // bits
    n = q.shape[-1]
    pad = (-n) % per
    if pad:
        q = np.concatenate([q, np.zeros(q.shape[:-1] + (pad,), q.dtype)], axis=-1)
    q = q.reshape(q.shape[:-1] + (-1, per)).astype(np.uint32)
    out = np.zeros(q.shape[:-1], np.uint32)
    for i in range(per):
        out |= q[..., i] << (i * bits)
    return out.astype(np.uint8)


def value_info(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def write_case(out, name, node, inputs, initializers, outputs, opsets):
    """inputs: list of (name, TensorProto) fed at run time."""
    graph = helper.make_graph(
        [node], name,
        [value_info(n, t.data_type, list(t.dims)) for n, t in inputs],
        [value_info(n, e, None) for n, e in outputs],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                              producer_name="skiff-tests")
    model.ir_version = 10 if any(v >= 21 for d, v in opsets if d == "") else 8
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    for i, (n, t) in enumerate(inputs):
        t.name = n
        with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
            f.write(t.SerializeToString())


def matmul_nbits(out, M, K, N, bs, bits, zp, bias, fp16=False, a3d=True):
    nb = (K + bs - 1) // bs
    q = rng.integers(0, 1 << bits, size=(N, nb * bs)).astype(np.uint8)
    B = pack_bits(q.reshape(N, nb, bs), bits)                      # [N, nb, blob]
    ft = np.float16 if fp16 else np.float32
    scales = (rng.random((N, nb)) * 0.05 + 0.01).astype(ft)
    A = rng.standard_normal((1, M, K) if a3d else (M, K)).astype(ft)
    ins = ["A", "B", "scales"]
    inits = [tensor("B", B), tensor("scales", scales.reshape(-1))]
    if zp == "packed":
        z = rng.integers(0, 1 << bits, size=(N, nb)).astype(np.uint8)
        inits.append(tensor("zp", pack_bits(z, bits)))
        ins.append("zp")
    elif zp == "float":
        inits.append(tensor("zp", (rng.integers(0, 1 << bits, size=(N * nb,)) + 0.5).astype(ft)))
        ins.append("zp")
    if bias:
        if len(ins) == 3:
            ins.append("")
        ins += ["", "bias"]
        inits.append(tensor("bias", rng.standard_normal(N).astype(ft)))
    node = helper.make_node("MatMulNBits", ins, ["Y"], domain=MS, K=K, N=N, bits=bits, block_size=bs)
    name = f"matmulnbits_m{M}_k{K}_n{N}_b{bs}_bits{bits}_{zp}{'_bias' if bias else ''}{'_f16' if fp16 else ''}"
    write_case(out, name, node, [("A", tensor("A", A))], inits,
               [("Y", TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT)], [("", 21), (MS, 1)])


def gather_block_quantized(out, kind, bs, with_zp, gather_axis=0, quantize_axis=1):
    R, C = 7, 80
    nblk = (C + bs - 1) // bs
    indices = np.array([[3, 0], [-1, 6]], np.int64)
    scales = (rng.random((R, nblk)) * 0.1 + 0.01).astype(np.float32)
    inits = [tensor("scales", scales)]
    ins = ["data", "indices", "scales"]
    attrs = dict(block_size=bs, gather_axis=gather_axis, quantize_axis=quantize_axis, bits=4)
    if kind in ("int4", "uint4"):
        signed = kind == "int4"
        q = rng.integers(-8 if signed else 0, 8 if signed else 16, size=(R, C))
        inits.insert(0, tensor_4bit("data", q, signed))
        if with_zp:
            z = rng.integers(-8 if signed else 0, 8 if signed else 16, size=(R, nblk))
            inits.append(tensor_4bit("zp", z, signed))
            ins.append("zp")
    else:  # uint8 holding two 4-bit values per byte along the last axis
        q = rng.integers(0, 16, size=(R, C)).astype(np.uint8)
        inits.insert(0, tensor("data", pack_bits(q, 4)))
        if with_zp:
            z = rng.integers(0, 16, size=(R, nblk)).astype(np.uint8)
            inits.append(tensor("zp", pack_bits(z, 4)))
            ins.append("zp")
    node = helper.make_node("GatherBlockQuantized", ins, ["Y"], domain=MS, **attrs)
    name = f"gatherblockquantized_{kind}_b{bs}{'_zp' if with_zp else ''}"
    write_case(out, name, node, [("indices", tensor("indices", indices))], inits, [("Y", TensorProto.FLOAT)],
               [("", 21), (MS, 1)])


def quantize_blocked(out, dtype, bs):
    """QuantizeLinear into int4/uint4 then DequantizeLinear back: ONNX Runtime's
    Node binding cannot hand over 4-bit tensors, so the pair is checked."""
    X = (rng.standard_normal((4, 37)) * 3).astype(np.float32)
    X[0, :4] = [0.5, 1.5, 2.5, -2.5]  # ties round to even
    nblk = (37 + bs - 1) // bs
    S = (rng.random((4, nblk)) * 0.5 + 0.1).astype(np.float32)
    S[0, 0] = 1.0
    signed = dtype == "int4"
    z = rng.integers(-3 if signed else 5, 3 if signed else 10, size=(4, nblk))
    z[0, 0] = 0
    q = helper.make_node("QuantizeLinear", ["X", "S", "Z"], ["Q"], axis=1, block_size=bs)
    dq = helper.make_node("DequantizeLinear", ["Q", "S", "Z"], ["Y"], axis=1, block_size=bs)
    graph = helper.make_graph([q, dq], "qdq", [value_info("X", TensorProto.FLOAT, [4, 37])],
                              [value_info("Y", TensorProto.FLOAT, None)],
                              initializer=[tensor("S", S), tensor_4bit("Z", z, signed)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="skiff-tests")
    model.ir_version = 10
    d = os.path.join(out, f"quantize_dequantize_blocked_{dtype}_b{bs}")
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    with open(os.path.join(d, "test_data_set_0", "input_0.pb"), "wb") as f:
        f.write(tensor("X", X).SerializeToString())


def integer_matmuls(out):
    A = rng.integers(0, 256, size=(2, 9, 33)).astype(np.uint8)
    Bm = rng.integers(-128, 128, size=(33, 20)).astype(np.int8)
    za = np.array(rng.integers(0, 256), np.uint8)
    zb = rng.integers(-128, 128, size=(20,)).astype(np.int8)
    node = helper.make_node("MatMulInteger", ["A", "B", "za", "zb"], ["Y"])
    write_case(out, "matmulinteger_u8s8_percolumn", node, [("A", tensor("A", A))],
               [tensor("B", Bm), tensor("za", za), tensor("zb", zb)], [("Y", TensorProto.INT32)], [("", 13)])
    Af = rng.standard_normal((3, 11, 33)).astype(np.float32)
    bscale = (rng.random(20) * 0.02 + 0.001).astype(np.float32)
    bias = rng.standard_normal(20).astype(np.float32)
    node = helper.make_node("DynamicQuantizeMatMul", ["A", "B", "bs", "zb", "bias"], ["Y"], domain=MS)
    write_case(out, "dynamicquantizematmul", node, [("A", tensor("A", Af))],
               [tensor("B", Bm), tensor("bs", bscale), tensor("zb", zb), tensor("bias", bias)],
               [("Y", TensorProto.FLOAT)], [("", 13), (MS, 1)])
    node = helper.make_node("MatMulIntegerToFloat", ["A", "B", "as", "bs", "za", "zb", "bias"], ["Y"], domain=MS)
    write_case(out, "matmulintegertofloat", node, [("A", tensor("A", A))],
               [tensor("B", Bm), tensor("as", np.array(0.0125, np.float32)), tensor("bs", bscale), tensor("za", za),
                tensor("zb", zb), tensor("bias", bias)], [("Y", TensorProto.FLOAT)], [("", 13), (MS, 1)])
    Ai = rng.integers(-128, 128, size=(2, 9, 33)).astype(np.int8)
    node = helper.make_node("QLinearMatMul", ["A", "as", "za", "B", "bs", "zb", "ys", "yz"], ["Y"])
    write_case(out, "qlinearmatmul_s8s8_percolumn", node, [("A", tensor("A", Ai))],
               [tensor("as", np.array(0.02, np.float32)), tensor("za", np.array(3, np.int8)), tensor("B", Bm),
                tensor("bs", bscale), tensor("zb", np.zeros(20, np.int8)), tensor("ys", np.array(0.05, np.float32)),
                tensor("yz", np.array(-4, np.int8))], [("Y", TensorProto.INT8)], [("", 13)])


def broadcast_and_conv(out):
    """MatMulInteger with broadcast batch dims; ConvInteger and QLinearConv with
    groups, strides, dilations, padding and per-channel weights."""
    A = rng.integers(0, 256, size=(2, 1, 5, 7)).astype(np.uint8)
    Bm = rng.integers(-128, 128, size=(3, 7, 4)).astype(np.int8)
    node = helper.make_node("MatMulInteger", ["A", "B", "za", "zb"], ["Y"])
    write_case(out, "matmulinteger_broadcast", node, [("A", tensor("A", A))],
               [tensor("B", Bm), tensor("za", np.array(7, np.uint8)), tensor("zb", np.array(-3, np.int8))],
               [("Y", TensorProto.INT32)], [("", 13)])
    X = rng.integers(0, 256, size=(2, 4, 19)).astype(np.uint8)
    W = rng.integers(0, 256, size=(6, 2, 3)).astype(np.uint8)
    node = helper.make_node("ConvInteger", ["X", "W", "xz", "wz"], ["Y"], group=2, strides=[2], dilations=[2],
                            pads=[1, 2])
    write_case(out, "convinteger_1d_group", node, [("X", tensor("X", X))],
               [tensor("W", W), tensor("xz", np.array(100, np.uint8)), tensor("wz", np.array(5, np.uint8))],
               [("Y", TensorProto.INT32)], [("", 10)])
    X = rng.integers(-128, 128, size=(1, 3, 9, 8)).astype(np.int8)
    W = rng.integers(-128, 128, size=(4, 3, 3, 2)).astype(np.int8)
    wscale = (rng.random(4) * 0.01 + 0.002).astype(np.float32)
    bias = rng.integers(-500, 500, size=(4,)).astype(np.int32)
    node = helper.make_node("QLinearConv", ["X", "xs", "xz", "W", "ws", "wz", "ys", "yz", "B"], ["Y"],
                            auto_pad="SAME_UPPER", strides=[2, 1])
    write_case(out, "qlinearconv_s8_perchannel_same", node, [("X", tensor("X", X))],
               [tensor("xs", np.array(0.05, np.float32)), tensor("xz", np.array(2, np.int8)), tensor("W", W),
                tensor("ws", wscale), tensor("wz", np.zeros(4, np.int8)), tensor("ys", np.array(0.2, np.float32)),
                tensor("yz", np.array(-5, np.int8)), tensor("B", bias)], [("Y", TensorProto.INT8)], [("", 10)])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for bs in (16, 32, 64, 128):
        for zp in ("none", "packed", "float"):
            matmul_nbits(out, 1, 3 * bs + bs // 2 + 3 if bs < 128 else 300, 40, bs, 4, zp, bias=(zp == "packed"))
            matmul_nbits(out, 9, 2 * bs + 7, 37, bs, 4, zp, bias=True)
    matmul_nbits(out, 5, 256, 64, 32, 4, "packed", bias=True, fp16=True)
    matmul_nbits(out, 3, 100, 24, 32, 8, "packed", bias=False)
    matmul_nbits(out, 3, 100, 24, 16, 2, "none", bias=False)
    matmul_nbits(out, 130, 96, 50, 32, 4, "packed", bias=True, a3d=False)
    for kind in ("int4", "uint4", "uint8"):
        for bs in (16, 32):
            for with_zp in (False, True):
                gather_block_quantized(out, kind, bs, with_zp)
    for dtype in ("int4", "uint4"):
        for bs in (16, 32):
            quantize_blocked(out, dtype, bs)
    integer_matmuls(out)
    broadcast_and_conv(out)


if __name__ == "__main__":
    main()
