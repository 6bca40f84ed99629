// Plays an HTTP-FLV URL with mpegts.js in headless Chromium and reports how far the
// <video> got. Usage: node flv_play.mjs URL SECONDS. Exit 0 when currentTime reached SECONDS.
import { launch } from './chromium.mjs';
import { createRequire } from 'node:module';

const [url, seconds = '3'] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const mpegts = require.resolve('mpegts.js/dist/mpegts.js');
const { context, close } = await launch();
let result;
try {
  const page = await context.newPage();
  await page.setContent('<video id="v" muted autoplay playsinline></video>');
  await page.addScriptTag({ path: mpegts });
  result = await page.evaluate(async ({ url, seconds }) => {
    if (!mpegts.getFeatureList().mseLivePlayback) return { error: 'no MSE live playback in this browser' };
    const v = document.getElementById('v');
    const player = mpegts.createPlayer({ type: 'flv', isLive: true, url });
    let playerError = null;
    player.on(mpegts.Events.ERROR, (type, detail) => { playerError = `${type}: ${detail}`; });
    player.attachMediaElement(v);
    player.load();
    v.play().catch(() => {});
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      if (v.currentTime >= seconds) return { currentTime: v.currentTime, width: v.videoWidth, height: v.videoHeight };
      if (playerError) return { error: playerError };
      await new Promise((r) => setTimeout(r, 100));
    }
    return { error: `currentTime stuck at ${v.currentTime}`, readyState: v.readyState };
  }, { url, seconds: Number(seconds) });
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result && !result.error ? 0 : 1);
