// Time per operator type in the browser: loads packages with `profile: true`,
// runs batch 1, seq 128 ten times, prints the most expensive op types.
// usage: node bench/web/profile.mjs PKGROOT PUBKEY NAME... [--web DIR]
import { chromium } from 'playwright-core';
import { serve } from '../../tests/web/server.mjs';

const args = process.argv.slice(2);
const wi = args.indexOf('--web');
const web = wi >= 0 ? args.splice(wi, 2)[1] : 'build/web';
const [root, key, ...names] = args;
const app = await serve({ mounts: { '/web/': web, '/test/': 'tests/web/pages', '/pkg/': root } });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  await page.goto(`${app.url}/test/harness.html`);
  await page.waitForFunction(() => window.harnessReady);
  for (const n of names) {
    const rows = await page.evaluate(async ([url, k]) => {
      const m = await window.skiff.load(url, { publicKey: k, profile: true });
      const f = {
        input_ids: { data: new BigInt64Array(128).fill(65n), dims: [1, 128] },
        attention_mask: { data: new BigInt64Array(128).fill(1n), dims: [1, 128] },
      };
      for (let i = 0; i < 10; i++) await m.run(f);
      const p = await m.profile();
      m.dispose();
      return p;
    }, [`${app.url}/pkg/${n}/`, key]);
    const total = rows.reduce((a, r) => a + r.ms, 0);
    console.log(`== ${n}: ${(total / 10).toFixed(1)} ms per run in kernels`);
    for (const r of rows.slice(0, 12)) {
      console.log(`  ${r.op.padEnd(34)} ${String(r.calls / 10).padStart(5)} calls ${(r.ms / 10).toFixed(2).padStart(8)} ms ${(100 * r.ms / total).toFixed(1).padStart(5)}%`);
    }
  }
} finally {
  await browser.close();
  await app.close();
}
