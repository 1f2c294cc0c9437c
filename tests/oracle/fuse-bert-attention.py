#!/usr/bin/python3
"""Rewrites a PyTorch (TorchScript) BERT export the way ONNX Runtime's
transformer optimizer would for its attention: every self-attention subgraph
(Q/K/V MatMul + Add, reshapes to heads, scaled Q K^T, the additive mask, Softmax,
P V, heads merged back) becomes one com.microsoft Attention node with the same
weights (Q, K and V weights packed into [hidden, 3 * hidden], biases into
[3 * hidden]), num_heads from the graph's reshape target, scale from the graph's
constants, and the model's attention_mask (cast to int32) as a [batch, seq] key
mask. The output projection and everything else stay as they are; what the
rewrite leaves unused is removed.

usage: /usr/bin/python3 tests/oracle/fuse-bert-attention.py IN.onnx OUT.onnx

For tests (tests/oracle/prune-ort.sh): ONNX Runtime's optimizer is Python and
not installable here. Exits 1 with a message when the graph is not the shape
this expects.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

src, dst = sys.argv[1:3]
m = onnx.load(src)
g = m.graph
inits = {t.name: t for t in g.initializer}
producer = {o: n for n in g.node for o in n.output}
consumers = {}
for n in g.node:
    for i in n.input:
        consumers.setdefault(i, []).append(n)


def die(msg):
    sys.stderr.write('fuse-bert-attention: %s\n' % msg)
    sys.exit(1)


def const(name):
    if name in inits:
        return numpy_helper.to_array(inits[name])
    n = producer.get(name)
    if n is not None and n.op_type == 'Constant':
        return numpy_helper.to_array(next(a.t for a in n.attribute if a.name == 'value'))
    die('%s is not a constant' % name)


def up(name, op):
    n = producer.get(name)
    if n is None or n.op_type != op:
        die('%s is not produced by %s' % (name, op))
    return n


def projection(name):
    """name = Add(bias, MatMul(x, W)) (either order) -> x, W, b."""
    add = up(name, 'Add')
    mm = next((producer[i] for i in add.input if i in producer and producer[i].op_type == 'MatMul'), None)
    if mm is None:
        die('%s: no MatMul under the bias Add' % name)
    b = next(i for i in add.input if i != mm.output[0])
    return mm.input[0], const(mm.input[1]), const(b)


def through(name, *ops):
    """Walks up a chain of single-input layout ops; returns the value under them."""
    for op in ops:
        name = up(name, op).input[0]
    return name


mask_name = 'attention_mask'
if mask_name not in [i.name for i in g.input]:
    die('no attention_mask input')
new_nodes = [helper.make_node('Cast', [mask_name], ['fused_mask_index'], name='fused_mask_index', to=TensorProto.INT32)]
fused = {}  # output value -> Attention node
layer = 0
for sm in [n for n in g.node if n.op_type == 'Softmax']:
    # context: Reshape(Transpose(MatMul(P, V)))  read by the output projection
    pv = None
    for c in consumers.get(sm.output[0], []):
        cand = c
        if cand.op_type == 'Where':  # the IsNaN guard of fully masked rows
            cand = consumers[cand.output[0]][0]
        if cand.op_type == 'MatMul':
            pv = cand
    if pv is None:
        die('%s: no P V MatMul' % sm.name)
    tr = consumers[pv.output[0]][0]
    ctx = consumers[tr.output[0]][0]
    if tr.op_type != 'Transpose' or ctx.op_type != 'Reshape':
        die('%s: the context is not Transpose + Reshape' % sm.name)
    # scores = MatMul(Mul(Q, a), Mul(K^T, b)) + mask
    add = up(sm.input[0], 'Add')
    qk = next(producer[i] for i in add.input if producer.get(i) is not None and producer[i].op_type == 'MatMul')
    scale = 1.0
    ops = []
    for side in qk.input:
        n = producer[side]
        if n.op_type == 'Mul':
            scale *= float(const(n.input[1]))
            side = n.input[0]
        ops.append(side)
    q_val = through(ops[0], 'Transpose', 'Reshape')
    k_val = through(ops[1], 'Transpose', 'Reshape')
    v_val = through(pv.input[1], 'Transpose', 'Reshape')
    reshape_q = up(up(ops[0], 'Transpose').input[0], 'Reshape')
    target = up(reshape_q.input[1], 'Concat')
    xq, wq, bq = projection(q_val)
    heads = int(const(target.input[2]).reshape(-1)[0])
    if heads <= 0:  # [batch, seq, -1, head size]
        heads = wq.shape[1] // int(const(target.input[3]).reshape(-1)[0])
    xk, wk, bk = projection(k_val)
    xv, wv, bv = projection(v_val)
    if not (xq == xk == xv):
        die('%s: Q, K and V do not read the same input' % sm.name)
    hidden = wq.shape[1]
    if hidden % heads or wq.shape != wk.shape:
        die('%s: widths do not fit %d heads' % (sm.name, heads))
    w = np.concatenate([wq, wk, wv], axis=1).astype(np.float32)
    b = np.concatenate([bq, bk, bv]).astype(np.float32)
    wn, bn = 'fused_attn_%d_qkv_weight' % layer, 'fused_attn_%d_qkv_bias' % layer
    g.initializer.extend([numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)])
    node = helper.make_node('Attention', [xq, wn, bn, 'fused_mask_index'], [ctx.output[0]], domain='com.microsoft',
                            name='fused_attention_%d' % layer, num_heads=heads, scale=scale)
    fused[ctx.output[0]] = node
    layer += 1
if not fused:
    die('no attention found')

# new node list: the Attention node takes the place of the Reshape it replaces
nodes = list(new_nodes)
for n in g.node:
    if n.output and n.output[0] in fused:
        nodes.append(fused[n.output[0]])
    else:
        nodes.append(n)
# remove what no longer reaches an output
live = {o.name for o in g.output}
keep = []
for n in reversed(nodes):
    if any(o in live for o in n.output):
        keep.append(n)
        live.update(i for i in n.input if i)
keep.reverse()
del g.node[:]
g.node.extend(keep)
used = [t for t in g.initializer if t.name in live]
del g.initializer[:]
g.initializer.extend(used)
del g.value_info[:]
if not any(o.domain == 'com.microsoft' for o in m.opset_import):
    m.opset_import.append(helper.make_opsetid('com.microsoft', 1))
onnx.checker.check_model(m)
onnx.save(m, dst)
print('%d attention blocks fused, %d nodes' % (layer, len(g.node)))
