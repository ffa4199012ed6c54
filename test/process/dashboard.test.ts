import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, type TestContext, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import { VERSION } from '../../src/version.ts'
import { launchChromium, skipWithoutChromium } from '../helpers/browser.ts'
import { type ServerProcess, startServer } from '../helpers/process.ts'

const ADMIN_TOKEN = 'dashboard-test-admin-token-0123456789'
const root = fileURLToPath(new URL('../..', import.meta.url))
const results = join(root, 'test-results')

/** The little of the DOM the in-page functions below use (the tests compile without lib.dom). */
interface PageElement {
  textContent: string | null
  dataset: Record<string, string | undefined>
}
declare const document: {
  querySelector(selector: string): PageElement | null
  querySelectorAll(selector: string): PageElement[]
  getElementById(id: string): PageElement | null
}
declare const sessionStorage: { setItem(key: string, value: string): void }

/** Waits until the chart of `metric` has drawn at least `min` points (its data-points attribute). */
const pointsOf =
  (metric: string, min = 1) =>
  (page: Page) =>
    page.waitForFunction(
      ([m, n]) => Number(document.querySelector(`.chart[data-metric="${m}"]`)?.dataset.points) >= Number(n),
      [metric, String(min)],
    )

/** Saves a 1280×800 screenshot under test-results/; also to docs/screenshots/ when missing or UPDATE_SCREENSHOTS=1. */
async function screenshot(page: Page, name: string) {
  mkdirSync(results, { recursive: true })
  const path = join(results, `dashboard-${name}.png`)
  await page.screenshot({ path })
  const docs = join(root, 'docs', 'screenshots', `${name}.png`)
  if (process.env.UPDATE_SCREENSHOTS === '1' || !existsSync(docs)) {
    mkdirSync(join(root, 'docs', 'screenshots'), { recursive: true })
    copyFileSync(path, docs)
  }
}

describe('dashboard in headless Chromium against the real server and simulator', {
  skip: skipWithoutChromium,
}, () => {
  let server: ServerProcess
  let context: BrowserContext
  let page: Page
  let profile: string
  let dataDir: string
  let startedAt = 0
  let listenedAt = 0
  const pageErrors: string[] = []

  /** A browser test that, on failure, saves a screenshot and adds the page's text and the server's log. */
  const browserTest = (name: string, fn: (t: TestContext) => Promise<void>) =>
    test(name, async (t) => {
      try {
        await fn(t)
      } catch (error) {
        mkdirSync(results, { recursive: true })
        const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)
        await page.screenshot({ path: join(results, `dashboard-failed-${slug}.png`) }).catch(() => {})
        const text = (await page.textContent('body').catch(() => null)) ?? '(no page text)'
        t.diagnostic(`page at ${page.url()}:\n${text.slice(0, 3000)}`)
        t.diagnostic(`server log (tail):\n${server.output().slice(-3000)}`)
        throw error
      }
    })

  const apiCall = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const res = await fetch(`${server.baseUrl}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        'content-type': 'application/json',
        ...init.headers,
      },
    })
    assert.ok(res.ok, `${path}: ${res.status} ${await res.clone().text()}`)
    return (await res.json()) as T
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'iot-dashboard-data-'))
    profile = mkdtempSync(join(tmpdir(), 'iot-dashboard-chromium-'))
    startedAt = Date.now()
    server = await startServer(
      {
        DATA_DIR: dataDir,
        SIMULATOR_ENABLED: 'true',
        SIMULATOR_DEVICES: '3',
        SIMULATOR_SEND_INTERVAL_S: '1',
        SIMULATOR_SAMPLING_MS: '200',
        ADMIN_TOKEN,
        AUTH_DISABLED: 'false',
        RATE_LIMIT_MAX: '600',
      },
      60_000,
    )
    listenedAt = Date.now()
    // The default configuration requires a token: a 200 here means authentication is off, which is a bug.
    assert.equal((await fetch(`${server.baseUrl}/api/stats`)).status, 401, 'authentication is on')
    context = await launchChromium(profile)
    page = context.pages()[0] ?? (await context.newPage())
    page.setDefaultTimeout(30_000)
    page.on('pageerror', (error) => pageErrors.push(error.message))
  })

  after(async () => {
    await context?.close()
    if (server) {
      server.child.kill('SIGTERM')
      await server.exited
    }
    for (const dir of [profile, dataDir]) if (dir) rmSync(dir, { recursive: true, force: true })
  })

  browserTest('before sign-in nothing that needs a session is shown', async () => {
    await page.goto(`${server.baseUrl}/`)
    await page.waitForURL(/#\/login/)
    await page.waitForSelector('#token')
    for (const selector of ['#main-nav', '#who', '#who-role', '#logout', '#server-info']) {
      assert.equal(await page.locator(selector).isVisible(), false, `${selector} is hidden before sign-in`)
    }
    for (const text of ['Fleet', 'Alerts', 'Sign out', 'signed in']) {
      assert.equal(await page.getByText(text, { exact: true }).isVisible(), false, `"${text}" is not shown`)
    }
  })

  browserTest('a wrong token shows the login error', async () => {
    await page.goto(`${server.baseUrl}/`)
    await page.waitForURL(/#\/login/)
    await page.fill('#token', 'not-a-valid-token-at-all')
    await page.click('form button[type=submit]')
    await page.waitForSelector('#login-status.error')
    assert.match((await page.textContent('#login-status')) ?? '', /not accepted/)
    assert.match(page.url(), /#\/login/)
  })

  browserTest('signing in shows the simulated devices online with counts', async (t) => {
    await page.fill('#token', ADMIN_TOKEN)
    await page.click('form button[type=submit]')
    await page.waitForURL(/#\/fleet/)
    await page.waitForFunction(
      () => document.querySelectorAll('tr[data-device-id][data-status="online"]').length === 3,
      undefined,
      { timeout: 60_000 },
    )
    await page.waitForFunction(
      () => document.querySelector('[data-stat="online"] .stat-value')?.textContent === '3',
    )
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-power]')].every((c) => /W$/.test(c.textContent ?? '')),
    )
    t.diagnostic(
      `server listening after ${((listenedAt - startedAt) / 1000).toFixed(1)} s; devices online in the fleet view after ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
    )
    assert.match((await page.textContent('#who-role')) ?? '', /admin/)
    // The footer: the server's version and the broker address a meter should use.
    await page.waitForSelector('#server-info:not([hidden]) [data-broker]')
    assert.match(
      (await page.textContent('#server-info')) ?? '',
      new RegExp(`IoT Meter ${VERSION.replace(/\./g, '\\.')}`),
    )
    assert.equal(await page.textContent('[data-broker]'), `mqtt://127.0.0.1:${server.brokerPort}`)
    assert.equal(await page.locator('#logout').isVisible(), true)
    await screenshot(page, 'fleet')
  })

  browserTest('a device page draws live charts with data points', async (t) => {
    await page.click('tr[data-device-id^="sim-dc"] a')
    await page.waitForURL(/#\/device\/sim-dc-/)
    for (const metric of ['voltage_dc', 'current_dc', 'power_active']) {
      await pointsOf(metric)(page)
      assert.equal(
        await page.locator(`.chart[data-metric="${metric}"] canvas`).count(),
        1,
        `${metric} has a uPlot canvas`,
      )
    }
    await pointsOf('energy')(page)
    assert.match((await page.textContent('[data-total="coverage"]')) ?? '', /%/)
    t.diagnostic(
      `device charts filled ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the server was started`,
    )
    await page.waitForSelector('#config-history tbody tr')
    await page.waitForSelector('#archive tbody tr')
    await pointsOf('power_active', 3)(page)
    await screenshot(page, 'device')
  })

  browserTest('request_status moves to accepted, shown in the table and the live status line', async () => {
    await page.click('button[data-cmd="request_status"]')
    await page.waitForSelector('tr[data-cmd="request_status"][data-status="accepted"]')
    await page.waitForFunction(() =>
      document.querySelector('#commands [role="status"]')?.textContent?.includes('request_status: accepted'),
    )
  })

  browserTest('an archived object downloads with the token', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#archive tbody tr button'),
    ])
    const file = await download.path()
    assert.ok(file && existsSync(file))
    assert.match(download.suggestedFilename(), /^sim-dc-\d+-.+\.ndjson$/)
  })

  browserTest('an alert raised through the API is acknowledged in the alerts view', async () => {
    const deviceId = decodeURIComponent(page.url().split('#/device/')[1] ?? '')
    const alert = await apiCall<{ id: number }>(`/api/devices/${deviceId}/alerts`, {
      method: 'POST',
      body: JSON.stringify({
        alert_type: 'dashboard_test',
        severity: 'warning',
        message: 'Raised by the dashboard test',
      }),
    })
    await page.click('nav a[href="#/alerts"]')
    const row = page.locator(`tr[data-alert-id="${alert.id}"]`)
    await row.waitFor()
    await row.getByRole('button', { name: /Acknowledge alert/ }).click()
    await page.waitForFunction((id) => !document.querySelector(`tr[data-alert-id="${id}"]`), alert.id)
    const acknowledged = await apiCall<{ id: number }[]>(
      `/api/alerts?acknowledged=true&alert_type=dashboard_test`,
    )
    assert.ok(acknowledged.some((a) => a.id === alert.id))
  })

  browserTest('a rejected token sends the user back to the login with a message', async () => {
    await page.evaluate(() => sessionStorage.setItem('iot-meter.token', 'revoked-token-0000000000'))
    await page.goto(`${server.baseUrl}/#/fleet`)
    await page.waitForURL(/#\/login/)
    assert.match((await page.textContent('.flash')) ?? '', /session has ended/)
    assert.deepEqual(pageErrors, [])
  })
})
