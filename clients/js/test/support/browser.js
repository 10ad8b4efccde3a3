// Debian's Chromium driven by playwright-core, with a fresh profile and no
// reaching out to Google's services (this machine's network refuses them).
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Why browser tests cannot run here, or undefined when they can. */
export function browserMissing() {
  if (existsSync(CHROMIUM)) return undefined;
  const reason = `no Chromium at ${CHROMIUM} (set CHROMIUM, or install Debian's chromium)`;
  if (process.env.TIDINGS_TEST_REQUIRE_ALL === '1') throw new Error(reason);
  return reason;
}

/**
 * Launches Chromium. playwright gives it a fresh temporary profile of its
 * own, and every `newContext()` is isolated (its own cookies): one per user.
 */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Forwards a page's console errors to the test's stderr. */
export function watch(page, name) {
  page.on('console', (message) => {
    // A missing favicon is noise.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) console.error(`[${name}] ${message.text()}`);
  });
  page.on('pageerror', (error) => console.error(`[${name}] ${error}`));
}
