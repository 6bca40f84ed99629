// Opens the playback server's page for a path in headless Chromium, asks it to play
// DURATION seconds from FROM seconds into the first recorded span, and waits for its
// <video> (fed by /get) to play. Usage: node playback_page.mjs PAGE_URL FROM DURATION SECONDS.
// Prints {"currentTime", "width", "src"} (or {"error"}); exit 0 when currentTime
// reached SECONDS.
import { launch } from './chromium.mjs';

const [url, from = '0', duration = '4', seconds = '3'] = process.argv.slice(2);
const { context, close } = await launch();
let result;
try {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('#spans tbody tr button', { timeout: 20000 });
  const inputs = page.locator('#spans tbody tr').first().locator('input');
  await inputs.nth(0).fill(from);
  await inputs.nth(1).fill(duration);
  await page.locator('#spans tbody tr button').first().click();
  result = await page.evaluate(async (seconds) => {
    const v = document.querySelector('video');
    const deadline = Date.now() + 40000;
    while (Date.now() < deadline) {
      if (v.currentTime >= seconds) {
        return { currentTime: v.currentTime, width: v.videoWidth, src: v.currentSrc };
      }
      if (v.error) return { error: `video error ${v.error.code}: ${v.error.message}`, src: v.currentSrc };
      await new Promise((r) => setTimeout(r, 100));
    }
    return { error: `currentTime stuck at ${v.currentTime}`, readyState: v.readyState, src: v.currentSrc };
  }, Number(seconds));
} catch (e) {
  result = { error: String(e) };
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result && !result.error ? 0 : 1);
