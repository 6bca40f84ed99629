// Glass-to-glass latency of mediarouter's player page: plays PAGE_URL in headless
// Chromium for SECONDS and samples, every 250 ms after a warm-up, the wall clock minus
// the program date time (the ingest wall clock) of the frame on screen, as hls.js
// reports it (`playingDate`). Prints JSON: median, p90, min, max in seconds.
// Usage: node hls_latency.mjs PAGE_URL SECONDS [WARMUP_SECONDS]
import { launch } from './chromium.mjs';

const [url, seconds = '20', warmup = '5'] = process.argv.slice(2);
const { context, close } = await launch();
let result;
try {
  const page = await context.newPage();
  await page.goto(url);
  result = await page.evaluate(async ({ seconds, warmup }) => {
    const v = document.querySelector('video');
    const start = Date.now();
    while (v.currentTime === 0 && Date.now() - start < 30000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (v.currentTime === 0) return { error: 'never played' };
    await new Promise((r) => setTimeout(r, warmup * 1000));
    const samples = [];
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const hls = window.mediarouterHls;
      const at = hls && hls.playingDate;
      if (at && !v.paused) samples.push((Date.now() - at.getTime()) / 1000);
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!samples.length) return { error: 'no program date time' };
    samples.sort((a, b) => a - b);
    const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
    return { samples: samples.length, median: q(0.5), p90: q(0.9), min: samples[0],
      max: samples[samples.length - 1], stalls: v.webkitDecodedFrameCount === undefined ? null : undefined };
  }, { seconds: Number(seconds), warmup: Number(warmup) });
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result && !result.error ? 0 : 1);
