// The textkind demo: classifies what you type (C, data, prose, Python) with
// the int8 package of the BERT byte classifier, through skiff's runtime. The
// model reads the first 128 bytes of the text; inference runs in skiff's Web
// Worker, so typing never waits for it.
import { load } from '/web/skiff.mjs';
import { publicKey } from '/config/config.mjs';

const LABELS = ['C', 'data', 'prose', 'Python'];
const SEQ = 128;
const $ = (id) => document.getElementById(id);

const bars = LABELS.map((name) => {
  const li = document.createElement('li');
  li.innerHTML = `<span>${name}</span><span class="track"><span class="fill" style="width:0"></span></span><span class="pct"></span>`;
  $('bars').appendChild(li);
  return { fill: li.querySelector('.fill'), pct: li.querySelector('.pct') };
});

let model;
let pending = null; // latest text waiting for the model
let busy = false;

// The result on screen can be for an older text than the box holds (a run is
// in flight, or newer text waits for it). #result is aria-busy and the body's
// data-state is "busy" until the result shown is for the latest text; then
// "idle", and data-bytes says how many bytes of it the model read. Anything
// that reads the label (screen readers, tests) must wait for "idle": a label
// alone can be left over from a prefix of the text.
function setState() {
  const idle = !busy && pending === null;
  document.body.dataset.state = idle ? 'idle' : 'busy';
  $('result').setAttribute('aria-busy', String(!idle));
}

async function classify() {
  if (busy || pending === null) return;
  busy = true;
  setState();
  const text = pending;
  pending = null;
  const bytes = new TextEncoder().encode(text).subarray(0, SEQ);
  const ids = new BigInt64Array(SEQ), mask = new BigInt64Array(SEQ);
  bytes.forEach((b, i) => { ids[i] = BigInt(b); mask[i] = 1n; });
  try {
    if (bytes.length === 0) {
      show(null);
    } else {
      const t0 = performance.now();
      const out = await model.run({ input_ids: { data: ids, dims: [1, SEQ] }, attention_mask: { data: mask, dims: [1, SEQ] } });
      const z = Array.from(out.logits.data);
      const mx = Math.max(...z), e = z.map((v) => Math.exp(v - mx)), s = e.reduce((a, b) => a + b, 0);
      show(e.map((v) => v / s), performance.now() - t0);
    }
    document.body.dataset.bytes = bytes.length;
  } catch (err) {
    $('status').textContent = `${err.name}: ${err.message}`;
    document.body.dataset.runError = err.name;
  }
  busy = false;
  if (pending === null) setState();
  else classify();
}

function show(p, ms) {
  if (!p) {
    $('label').textContent = '–';
    $('confidence').textContent = '';
    bars.forEach((b) => { b.fill.style.width = '0'; b.pct.textContent = ''; });
    delete document.body.dataset.label;
    return;
  }
  const best = p.indexOf(Math.max(...p));
  $('label').textContent = LABELS[best];
  $('confidence').textContent = `${(100 * p[best]).toFixed(1)}% confident · ${ms.toFixed(0)} ms`;
  p.forEach((v, i) => { bars[i].fill.style.width = `${100 * v}%`; bars[i].pct.textContent = `${(100 * v).toFixed(0)}%`; });
  document.body.dataset.label = LABELS[best];
}

$('text').addEventListener('input', (ev) => { pending = ev.target.value; setState(); classify(); });
setState();

try {
  const t0 = performance.now();
  model = await load('/model/', {
    publicKey,
    onProgress: ({ loaded, total }) => {
      $('bar').value = total ? loaded / total : 0;
      if (total) $('status').textContent = `loading the model… ${(loaded / 1e6).toFixed(2)} of ${(total / 1e6).toFixed(2)} MB`;
    },
  });
  $('status').textContent = `ready: ${model.name} v${model.version}, verified, in ${(performance.now() - t0).toFixed(0)} ms`;
  $('foot').textContent = `Package: ${model.manifest.files.length} files, ${(model.manifest.files.reduce((a, f) => a + f.size, 0) / 1e6).toFixed(2)} MB; signed manifest checked with WebCrypto Ed25519; cached for offline use.`;
  document.body.dataset.ready = '1';
  $('text').disabled = false;
  $('text').focus();
  if ($('text').value) { pending = $('text').value; classify(); }
} catch (err) {
  $('status').textContent = `could not load the model: ${err.name}: ${err.message}`;
  document.body.dataset.error = err.name;
}
