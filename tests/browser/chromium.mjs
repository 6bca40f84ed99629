// Headless Chromium for the browser tests: Debian's chromium, driven by
// playwright-core, in a throw-away profile. `launch()` returns the context and a
// `close()` that also removes the profile.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// HTTP_USER/HTTP_PASS in the environment answer the server's Basic prompt, as a
// person would in the browser's dialog.
export async function launch(extraArgs = []) {
  const profile = mkdtempSync(join(tmpdir(), 'mediarouter-chromium-'));
  const credentials = process.env.HTTP_USER
    ? { httpCredentials: { username: process.env.HTTP_USER, password: process.env.HTTP_PASS || '' } }
    : {};
  const context = await chromium.launchPersistentContext(profile, {
    ...credentials,
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-quic', '--autoplay-policy=no-user-gesture-required',
      ...extraArgs],
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}
