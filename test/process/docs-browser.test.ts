import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { BrowserContext } from 'playwright-core'
import { launchChromium, skipWithoutChromium } from '../helpers/browser.ts'
import { build, type TestApp } from '../helpers/build.ts'

const results = fileURLToPath(new URL('../../test-results', import.meta.url))

/**
 * The API reference as a user opens it: authentication on (the default), the server's own strict
 * Content-Security-Policy, a real browser. Operations must be listed and nothing blocked.
 */
describe('API reference (/docs) in headless Chromium, authentication on', {
  skip: skipWithoutChromium,
}, () => {
  let t: TestApp
  let baseUrl: string
  let context: BrowserContext
  let profile: string

  before(async () => {
    t = await build()
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' })
    profile = mkdtempSync(join(tmpdir(), 'iot-docs-chromium-'))
    context = await launchChromium(profile)
  })

  after(async () => {
    await context?.close()
    await t?.close()
    if (profile) rmSync(profile, { recursive: true, force: true })
  })

  test('lists the operations, with no console error and no CSP violation', async () => {
    const page = context.pages()[0] ?? (await context.newPage())
    page.setDefaultTimeout(30_000)
    const problems: string[] = []
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`)
    })
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    const response = await page.goto(`${baseUrl}/docs`)
    assert.equal(response?.status(), 200)
    assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self';/)
    // The document's title, before navigating: the reference renders sections lazily, and a click on a
    // tag can leave the introduction out of the page's text.
    await page.getByText('IoT Meter API').first().waitFor()
    // The sidebar lists the operations (grouped by tag; the first group is open).
    await page.getByText('Create an API token (admin)').first().waitFor()
    for (const group of ['devices', 'alerts', 'health']) {
      await page.getByText(group, { exact: true }).first().waitFor()
    }
    await page.getByText('devices', { exact: true }).first().click()
    await page.getByText('List devices, newest first').first().waitFor()
    mkdirSync(results, { recursive: true })
    await page.screenshot({ path: join(results, 'docs-reference.png') })
    assert.deepEqual(problems, [])
  })
})
