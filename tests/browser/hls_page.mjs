// Opens mediarouter's player page for a path in headless Chromium and waits for its
// <video> to play. Usage: node hls_page.mjs PAGE_URL SECONDS SCREENSHOT.
// Prints {"currentTime", "width", "height"} (or {"error"}); exit 0 when currentTime
// reached SECONDS. The screenshot is taken either way.
import { launch } from './chromium.mjs';

const [url, seconds = '3', screenshot] = process.argv.slice(2);
const { context, close } = await launch();
let result;
try {
  const page = await context.newPage();
  const scripts = [];
  page.on('request', (r) => scripts.push(r.url()));
  await page.goto(url);
  result = await page.evaluate(async (seconds) => {
    const v = document.querySelector('video');
    if (!v) return { error: 'no video element' };
    const deadline = Date.now() + 40000;
    while (Date.now() < deadline) {
      if (v.currentTime >= seconds) {
        return { currentTime: v.currentTime, width: v.videoWidth, height: v.videoHeight,
          message: document.getElementById('message').textContent };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { error: `currentTime stuck at ${v.currentTime}`, readyState: v.readyState,
      message: document.getElementById('message').textContent };
  }, Number(seconds));
  result.offsite = scripts.filter((u) => /^(https?|wss?):/.test(u) && !u.startsWith(new URL(url).origin));
  if (screenshot) await page.screenshot({ path: screenshot });
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result && !result.error ? 0 : 1);
