// Opens mediarouter's WebRTC reader page in headless Chromium and samples getStats()
// once a second. Usage: node webrtc_read.mjs PAGE_URL SECONDS [SCREENSHOT].
// Prints {"decoded": [framesDecoded per second], "width", "height", "audioSamples": [...],
// "note", "message", "connectMs"} (or {"error"}); exit 0 when video frames were decoded
// in every second of the window.
import { launch } from './chromium.mjs';

const [url, seconds = '5', screenshot] = process.argv.slice(2);
const { context, close } = await launch(['--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns']);
let result;
try {
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(url);
  result = await page.evaluate(async (seconds) => {
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const stats = async () => {
      const pc = window.mediarouterPc;
      if (!pc) return {};
      const out = {};
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.decoded = s.framesDecoded || 0;
          out.width = s.frameWidth;
          out.height = s.frameHeight;
          out.lost = s.packetsLost;
          out.nacks = s.nackCount;
          out.jitterBufferDelay = s.jitterBufferDelay;
          out.jitterBufferEmitted = s.jitterBufferEmittedCount;
        }
        if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioSamples = s.totalSamplesReceived || 0;
      });
      out.state = pc.connectionState;
      return out;
    };
    const start = Date.now();
    let first = await stats();
    while (!(first.decoded > 0) && Date.now() - start < 20000) {
      await sleep(50);
      first = await stats();
    }
    if (!(first.decoded > 0)) {
      return { error: 'no frame decoded in 20 s', stats: first,
        message: document.getElementById('message').textContent };
    }
    const firstFrameMs = Date.now() - start;
    const decoded = [first.decoded];
    const audioSamples = [first.audioSamples || 0];
    let last = first;
    for (let i = 0; i < seconds; i++) {
      await sleep(1000);
      last = await stats();
      decoded.push(last.decoded);
      audioSamples.push(last.audioSamples || 0);
    }
    return { decoded, audioSamples, width: last.width, height: last.height, lost: last.lost,
      nacks: last.nacks, firstFrameMs,
      jitterBufferMs: last.jitterBufferEmitted ? 1000 * last.jitterBufferDelay / last.jitterBufferEmitted : null,
      note: document.getElementById('note').textContent,
      message: document.getElementById('message').textContent };
  }, Number(seconds));
  result.pageMs = Date.now() - t0;
  if (screenshot) await page.screenshot({ path: screenshot });
  await page.close();
} finally {
  await close();
}
console.log(JSON.stringify(result));
const d = result.decoded || [];
const rising = d.length > 1 && d.every((v, i) => i === 0 || v > d[i - 1]);
process.exit(!result.error && rising ? 0 : 1);
