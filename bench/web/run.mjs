// Drives bench/web/index.html in headless Chromium (Debian's, via
// playwright-core) against a local server on 127.0.0.1, and prints the table.
// usage: node bench/web/run.mjs PKGROOT PUBKEY [--runs N] [--json FILE] [--screenshot FILE]
//   PKGROOT holds int8/ and int4/ packages (and any other folder named with --pkg a,b).
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { serve } from '../../tests/web/server.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const [root, key] = args;
const runs = opt('--runs', '30');
const names = opt('--pkg', 'int8,int4').split(',');
const app = await serve({ mounts: { '/web/': opt('--web', 'build/web'), '/bench/': 'bench/web', '/ort/': 'node_modules/onnxruntime-web/dist', '/pkg/': root } });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const q = `pkg=${names.map((n) => `/pkg/${n}/`).join(',')}&key=${encodeURIComponent(key)}&runs=${runs}`;
  await page.goto(`${app.url}/bench/index.html?${q}`);
  await page.waitForFunction(() => window.benchResult, null, { timeout: 600000 });
  const r = await page.evaluate(() => window.benchResult);
  if (opt('--screenshot')) await page.screenshot({ path: opt('--screenshot'), fullPage: true });
  if (opt('--json')) writeFileSync(opt('--json'), JSON.stringify(r, null, 2) + '\n');
  if (!r.ok) { console.error(`bench: ${r.error}`); process.exitCode = 1; }
  console.log(`batch 1, seq ${r.seq ?? 128}, median of ${r.runs ?? runs} runs, headless Chromium, 1 thread`);
  console.log('package      skiff ms   ort-web ms   ort/skiff   cold first ms   warm first ms   bytes     max |diff|');
  for (const x of r.results) {
    console.log(`${x.pkg.padEnd(12)} ${x.skiff_ms.toFixed(1).padStart(8)} ${x.ort_ms.toFixed(1).padStart(12)} ${(x.ratio.toFixed(2) + 'x').padStart(11)} ` +
      `${x.cold_ms.toFixed(0).padStart(15)} ${x.warm_ms.toFixed(0).padStart(15)} ${String(x.bytes).padStart(9)}   ${x.logits_max_diff.toExponential(1)}`);
  }
} finally {
  await browser.close();
  await app.close();
}
