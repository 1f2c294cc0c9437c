// The demo's test: serves examples/textkind like `make demo` (after
// `make demo DEMO_SERVE=0`), opens it in headless Chromium, types text and
// reads the label, and saves a screenshot to B/demo/screenshot.png.
// usage: node examples/textkind/test.mjs [B]
import { chromium } from 'playwright-core';
import { serve } from '../../tests/web/server.mjs';

const B = process.argv[2] || 'build';
let passed = 0, failed = 0;
const check = (c, name, why) => { if (c) { passed++; console.log(`ok: ${name}`); } else { failed++; console.log(`FAIL: ${name}: ${why}`); } };

const srv = await serve({ mounts: { '/web/': `${B}/web`, '/model/': `${B}/demo/pkg`, '/config/': `${B}/demo`, '/': 'examples/textkind' } });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const SAMPLES = [
  ['C', '#include <stdio.h>\n\nint main(int argc, char **argv)\n{\n    for (int i = 0; i < argc; i++)\n        printf("%s\\n", argv[i]);\n    return 0;\n}\n'],
  ['Python', 'import os\n\ndef walk(root):\n    for dirpath, dirnames, filenames in os.walk(root):\n        for name in filenames:\n            yield os.path.join(dirpath, name)\n'],
  ['data', '{\n  "name": "skiff",\n  "version": "0.1.0",\n  "private": true,\n  "devDependencies": {\n    "playwright-core": "1.65.1"\n  }\n}\n'],
  ['prose', 'The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks were striking thirteen.'],
];
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 720 } });
  page.on('pageerror', (e) => console.log(`  (page error: ${e.message})`));
  await page.goto(`${srv.url}/`);
  await page.waitForFunction(() => document.body.dataset.ready || document.body.dataset.error, null, { timeout: 120000 });
  const err = await page.evaluate(() => document.body.dataset.error);
  check(!err, `demo loads the model (${await page.textContent('#status')})`, await page.textContent('#status'));
  const bar = await page.evaluate(() => document.getElementById('bar').value);
  check(bar === 1, 'progress bar ends full', `value ${bar}`);
  if (!err) {
    for (const [want, text] of SAMPLES) {
      await page.fill('#text', '');
      await page.type('#text', text.slice(0, 40), { delay: 5 }); // typing, as a person would
      await page.fill('#text', text);
      // The label is read once the result is for the whole text: while typing,
      // a prefix can already show the expected label (the first 33 bytes of
      // the prose sample are prose, the first 38 Python).
      const nbytes = Math.min(128, Buffer.byteLength(text));
      await page.waitForFunction((n) => document.body.dataset.state === 'idle' && document.body.dataset.bytes === String(n),
        nbytes, { timeout: 20000 }).catch(() => {});
      const label = await page.textContent('#label');
      check(label === want, `typed ${want} text, the demo says "${label}" (${await page.textContent('#confidence')})`,
        `label "${label}" for the first ${await page.evaluate(() => document.body.dataset.bytes)} bytes; ` +
        `${(await page.inputValue('#text')).length} characters in the box; status "${await page.textContent('#status')}"`);
    }
    await page.fill('#text', SAMPLES[0][1]);
    await page.waitForFunction(() => document.body.dataset.state === 'idle', null, { timeout: 20000 }).catch(() => {});
    await page.waitForTimeout(400); // the bars' width transition
    await page.screenshot({ path: `${B}/demo/screenshot.png`, fullPage: true });
    console.log(`screenshot: ${B}/demo/screenshot.png`);
  }
} catch (e) {
  check(false, 'demo test', e.stack || e.message);
} finally {
  await browser.close();
  await srv.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
