// Opens the player page of a path nobody publishes to and prints the message it shows.
// Usage: node hls_offline.mjs PAGE_URL
import { launch } from './chromium.mjs';

const [url] = process.argv.slice(2);
const { context, close } = await launch();
let message = '';
try {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('message').textContent !== '', null,
    { timeout: 30000 });
  message = await page.evaluate(() => document.getElementById('message').textContent);
} finally {
  await close();
}
console.log(JSON.stringify({ message }));
