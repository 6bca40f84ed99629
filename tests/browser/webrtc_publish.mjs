// Publishes from mediarouter's WHIP page in headless Chromium (a canvas clock and a
// tone: `?source=canvas`) for SECONDS once connected. Usage:
// node webrtc_publish.mjs PAGE_URL SECONDS. Prints {"connectMs", "sent": {video
// frames, audio packets}, "codec", "message"} (or {"error"}); exit 0 when it connected.
import { launch } from './chromium.mjs';

const [url, seconds = '10'] = process.argv.slice(2);
const { context, close } = await launch(['--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns']);
let result;
try {
  const page = await context.newPage();
  await page.goto(url);
  result = await page.evaluate(async (seconds) => {
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const start = Date.now();
    while (!(window.mediarouterPc && window.mediarouterPc.connectionState === 'connected')) {
      if (Date.now() - start > 20000) {
        return { error: 'not connected in 20 s', message: document.getElementById('message').textContent };
      }
      await sleep(50);
    }
    const connectMs = Date.now() - start;
    await sleep(seconds * 1000);
    const sent = {};
    let codec = null;
    const stats = await window.mediarouterPc.getStats();
    stats.forEach((s) => {
      if (s.type === 'outbound-rtp') {
        sent[s.kind] = s.kind === 'video' ? s.framesEncoded : s.packetsSent;
        if (s.kind === 'video' && s.codecId) codec = stats.get(s.codecId).mimeType;
      }
    });
    return { connectMs, sent, codec, message: document.getElementById('message').textContent };
  }, Number(seconds));
  await page.close();
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result && !result.error ? 0 : 1);
