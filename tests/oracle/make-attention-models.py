#!/usr/bin/python3
"""Generates small models with ONNX Runtime's fused com.microsoft Attention and
MultiHeadAttention ops, and their inputs, for tests/oracle/attention-ort.sh.

usage: /usr/bin/python3 tests/oracle/make-attention-models.py OUTDIR

Writes OUTDIR/NAME.onnx and OUTDIR/NAME.INPUT.npy per case, and OUTDIR/cases.txt
with one line per case: NAME then its inputs as NAME=FILE words. The cases cover
every mask form the kernels implement (none, [B] end positions, [2B] end and
start positions, [B, T] key masks, [B, S, T]), unidirectional, custom scale and
mask_filter_value, attention_bias broadcast over batch or heads,
qkv_hidden_sizes with a narrower V, past/present state, odd sizes (head size
3, one token), and MultiHeadAttention's layouts (separate Q/K/V with cross
attention, packed QKV, packed KV, K/V split into heads, past_key/past_value).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
cases = []

FT = TensorProto.FLOAT


def f32(shape, s=0.5):
    return (rng.standard_normal(shape) * s).astype(np.float32)


def save(name, op, node_inputs, feeds, consts, attrs, outputs):
    """feeds: {name: array} graph inputs; consts: {name: array} initializers;
    node_inputs: list with '' for absent; outputs: list of (name, shape-or-None)."""
    inputs = []
    for k, v in feeds.items():
        et = FT if v.dtype == np.float32 else TensorProto.INT32
        inputs.append(helper.make_tensor_value_info(k, et, list(v.shape)))
    outs = [helper.make_tensor_value_info(n, FT, None) for n in outputs]
    node = helper.make_node(op, node_inputs, outputs, domain='com.microsoft', name=name, **attrs)
    g = helper.make_graph([node], name, inputs, outs, [numpy_helper.from_array(v, k) for k, v in consts.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17), helper.make_opsetid('com.microsoft', 1)])
    m.ir_version = 8
    onnx.save(m, os.path.join(out, name + '.onnx'))
    words = [name]
    for k, v in feeds.items():
        p = os.path.join(out, '%s.%s.npy' % (name, k))
        np.save(p, v)
        words.append('%s=%s' % (k, p))
    cases.append(' '.join(words))


def key_mask(B, T):
    m = np.ones((B, T), np.int32)
    for b in range(B):
        m[b, T - b:] = 0 if b else 1
    return m


def attention(name, B, S, E, N, sizes=None, bias=True, mask=None, past=0, abias=None, **attrs):
    q, k, v = sizes or (E, E, E)
    feeds = {'x': f32((B, S, E))}
    consts = {'w': f32((E, q + k + v), 0.3)}
    ins = ['x', 'w', '', '', '', '']
    if bias:
        consts['b'] = f32((q + k + v,), 0.2)
        ins[2] = 'b'
    if mask is not None:
        feeds['mask'] = mask
        ins[3] = 'mask'
    outputs = ['y']
    if past:
        feeds['past'] = f32((2, B, N, past, q // N))
        ins[4] = 'past'
        outputs.append('present')
    if abias is not None:
        feeds['abias'] = abias
        ins[5] = 'abias'
    while ins and ins[-1] == '':
        ins.pop()
    if sizes:
        attrs['qkv_hidden_sizes'] = list(sizes)
    save(name, 'Attention', ins, feeds, consts, dict(num_heads=N, **attrs), outputs)


B, S, E, N = 3, 7, 32, 4
attention('a_basic', 2, 5, 24, 3)
# (Attention without a bias crashes ONNX Runtime 1.30's CPU kernel: not an oracle case)
attention('a_mask2d', B, S, E, N, mask=key_mask(B, S))
attention('a_mask1d', B, S, E, N, mask=np.array([7, 4, 1], np.int32))
attention('a_mask1d_start', B, S, E, N, mask=np.array([7, 6, 5, 0, 2, 3], np.int32))
m3 = (rng.random((B, S, S)) > 0.3).astype(np.int32)
m3[:, :, 0] = 1
attention('a_mask3d', B, S, E, N, mask=m3)
attention('a_unidir', B, S, E, N, mask=key_mask(B, S), unidirectional=1)
attention('a_qkv_sizes', 2, 6, 20, 4, sizes=(24, 24, 16), mask=key_mask(2, 6))
attention('a_scale_filter', B, S, E, N, mask=key_mask(B, S), scale=0.3, mask_filter_value=-100.0)
attention('a_abias_heads', B, S, E, N, mask=key_mask(B, S), abias=f32((1, N, S, S)))
attention('a_abias_batch', B, S, E, N, abias=f32((B, 1, S, S)))
attention('a_past', 2, 3, 24, 4, past=5, unidirectional=1)
attention('a_odd', 1, 1, 15, 5)
attention('a_odd2', 2, 9, 15, 5, mask=key_mask(2, 9))


def mha(name, B, S, L, N, H, Hv=None, layout='sep', bias=True, mask=None, past=0, abias=None, **attrs):
    Hv = Hv or H
    D, Dv = N * H, N * Hv
    feeds = {}
    ins = ['q', '', '', '', '', '', '', '']
    if layout == 'packed_qkv':
        feeds['q'] = f32((B, S, N, 3, H))
    else:
        feeds['q'] = f32((B, S, D))
        if layout == 'sep':
            feeds['k'] = f32((B, L, D))
            feeds['v'] = f32((B, L, Dv))
            ins[1:3] = ['k', 'v']
        elif layout == 'packed_kv':
            feeds['k'] = f32((B, L, N, 2, H))
            ins[1] = 'k'
        elif layout == 'bnsh':
            feeds['k'] = f32((B, N, L, H))
            feeds['v'] = f32((B, N, L, Hv))
            ins[1:3] = ['k', 'v']
    consts = {}
    if bias:
        consts['b'] = f32((2 * D + Dv,), 0.2)
        ins[3] = 'b'
    if mask is not None:
        feeds['mask'] = mask
        ins[4] = 'mask'
    if abias is not None:
        feeds['abias'] = abias
        ins[5] = 'abias'
    outputs = ['y']
    if past:
        feeds['pk'] = f32((B, N, past, H))
        feeds['pv'] = f32((B, N, past, Hv))
        ins[6:8] = ['pk', 'pv']
        outputs += ['present_key', 'present_value']
    while ins and ins[-1] == '':
        ins.pop()
    save(name, 'MultiHeadAttention', ins, feeds, consts, dict(num_heads=N, **attrs), outputs)


mha('m_self', 2, 6, 6, 4, 8)
mha('m_cross_mask2d', 3, 5, 9, 4, 6, mask=key_mask(3, 9))
mha('m_mask1d', 3, 5, 9, 2, 8, mask=np.array([9, 3, 1], np.int32))
mha('m_mask3d', 2, 5, 5, 4, 4, mask=(rng.random((2, 5, 5)) > 0.3).astype(np.int32))
mha('m_vsize', 2, 4, 7, 3, 5, Hv=3, mask=key_mask(2, 7))
mha('m_nobias_unidir', 2, 6, 6, 4, 4, bias=False, unidirectional=1)
mha('m_abias', 2, 5, 5, 2, 8, abias=f32((2, 2, 5, 5)), scale=0.25)
mha('m_packed_qkv', 2, 5, 5, 4, 8, bias=False)
mha('m_packed_kv', 2, 5, 7, 4, 8, bias=False)
mha('m_bnsh', 2, 5, 7, 4, 8, bias=False, mask=key_mask(2, 7))
mha('m_past', 2, 3, 3, 4, 8, past=4, unidirectional=1)

with open(os.path.join(out, 'cases.txt'), 'w') as f:
    f.write('\n'.join(cases) + '\n')
