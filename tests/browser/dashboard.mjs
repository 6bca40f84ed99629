// Drives the API's dashboard in headless Chromium. Usage:
// node dashboard.mjs API_URL PATH KICK_KIND KICK_ID NEW_PATH SCREENSHOT
// Waits for PATH's row to show a non-zero inbound bitrate, opens it, kicks the reader
// KICK_KIND/KICK_ID with its button, adds NEW_PATH from the form, sends an invalid
// config edit and reads the inline error, and screenshots the page.
// Prints {"bitrate", "kicked", "added", "editError", "offsite"} or {"error"}.
import { launch } from './chromium.mjs';

const [url, path, kind, id, added, screenshot] = process.argv.slice(2);
const { context, close } = await launch();
let result = {};
try {
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(url);
  const row = page.locator(`tr.path[data-path="${path}"]`);
  await row.waitFor({ timeout: 20000 });
  await page.waitForFunction((p) => {
    const td = document.querySelector(`tr.path[data-path="${p}"] td.bitrate`);
    return td && !td.textContent.startsWith('0 ');
  }, path, { timeout: 20000 });
  result.bitrate = await page.locator(`tr.path[data-path="${path}"] td.bitrate`).textContent();
  await row.click();
  const kick = page.locator(`#sel-clients tr[data-kind="${kind}"][data-id="${id}"] button.kick`);
  await kick.waitFor({ timeout: 20000 });
  await kick.click();
  await page.locator(`#sel-clients tr[data-kind="${kind}"][data-id="${id}"]`).waitFor({ state: 'detached', timeout: 20000 });
  result.kicked = true;
  await page.fill('#add-name', added);
  await page.fill('#add-source', 'publisher');
  await page.click('#add button');
  await page.locator(`tr.path[data-path="${added}"]`).waitFor({ timeout: 20000 });
  result.added = true;
  await page.locator(`tr.path[data-path="${path}"]`).click();
  await page.waitForFunction(() => document.getElementById('sel-conf').value.includes('"source"'), null, { timeout: 20000 });
  await page.fill('#sel-conf', '{"maxReaders": "many"}');
  await page.click('#sel-save');
  await page.waitForFunction(() => document.getElementById('sel-error').textContent !== '', null, { timeout: 20000 });
  result.editError = await page.locator('#sel-error').textContent();
  // Everything comes from this host (the API and, in the preview, the HLS listener).
  const hostname = new URL(url).hostname;
  result.offsite = requests.filter((u) => /^(https?|wss?):/.test(u) && new URL(u).hostname !== hostname);
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (e) {
  result.error = String(e);
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result && !result.error ? 0 : 1);
