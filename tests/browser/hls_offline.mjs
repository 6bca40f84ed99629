// Opens the player page of a path nobody publishes to and prints the message it shows.
// Usage: node hls_offline.mjs PAGE_URL
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'mediarouter-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-quic'],
});
let message = '';
try {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('message').textContent !== '', null,
    { timeout: 30000 });
  message = await page.evaluate(() => document.getElementById('message').textContent);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ message }));
