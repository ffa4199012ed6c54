import { existsSync } from 'node:fs'
import { type BrowserContext, chromium } from 'playwright-core'

/** Debian's Chromium; browser tests never download a browser. */
export const CHROMIUM = '/usr/bin/chromium'

/** `skip` option of the browser suites: a reason when Chromium is missing, else false. */
export const skipWithoutChromium = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} not found: install Debian's Chromium (apt-get install -y chromium) to run the browser tests`

/** Headless Chromium with its own profile directory, 1280×800. */
export function launchChromium(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
}
