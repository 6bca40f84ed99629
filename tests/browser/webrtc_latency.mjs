// Glass-to-glass latency WHIP → mediarouter → WHEP in one headless Chromium: one tab
// publishes the page's canvas clock (`/<path>/publish?source=canvas`: the time in ms
// as 16 black/white blocks), another plays `/<path>/` and reads the clock back from
// each frame it presents (requestVideoFrameCallback), against the same Date.now().
// Usage: node webrtc_latency.mjs BASE_URL PATH SECONDS.
// Prints {"samples", "median", "p95", "min", "max"} in ms (or {"error"}).
import { launch } from './chromium.mjs';

const [base, path, seconds = '10'] = process.argv.slice(2);
const { context, close } = await launch(['--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows']);
let result;
try {
  const pub = await context.newPage();
  await pub.goto(`${base}/${path}/publish?source=canvas`);
  await pub.waitForFunction(() => window.mediarouterPc && window.mediarouterPc.connectionState === 'connected',
    null, { timeout: 20000 });
  const rd = await context.newPage();
  await rd.goto(`${base}/${path}/`);
  result = await rd.evaluate(async (seconds) => {
    const video = document.getElementById('video');
    const start = Date.now();
    while (!(video.videoWidth > 0 && video.currentTime > 0)) {
      if (Date.now() - start > 20000) return { error: 'the reader page did not play in 20 s' };
      await new Promise((r) => setTimeout(r, 50));
    }
    const canvas = new OffscreenCanvas(640, 360);
    const g = canvas.getContext('2d', { willReadFrequently: true });
    const samples = [];
    await new Promise((done) => {
      const until = Date.now() + seconds * 1000;
      const frame = () => {
        const now = Date.now();
        g.drawImage(video, 0, 0, 640, 360);
        const row = g.getImageData(0, 20, 640, 1).data;
        let t = 0;
        for (let i = 0; i < 16; i++) t = (t << 1) | (row[(i * 40 + 20) * 4] > 128 ? 1 : 0);
        const lat = ((now & 0xffff) - t + 0x10000) % 0x10000;
        // A frame whose blocks didn't decode cleanly reads as nonsense: keep plausible ones.
        if (lat < 10000) samples.push(lat);
        if (Date.now() < until) video.requestVideoFrameCallback(frame); else done();
      };
      video.requestVideoFrameCallback(frame);
    });
    samples.sort((a, b) => a - b);
    const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
    return samples.length
      ? { samples: samples.length, median: q(0.5), p95: q(0.95), min: samples[0], max: samples[samples.length - 1] }
      : { error: 'no frame carried a readable clock' };
  }, Number(seconds));
} catch (e) {
  result = { error: String(e) };
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result && !result.error ? 0 : 1);
