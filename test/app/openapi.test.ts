import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { accessFor, POLICY } from '../../src/modules/auth/index.ts'
import { VERSION } from '../../src/version.ts'
import { build, type TestApp } from '../helpers/build.ts'

describe('OpenAPI reference', () => {
  let t: TestApp
  before(async () => {
    t = await build()
  })
  after(() => t.close())

  test('/openapi.json documents every /api route with its schemas', async () => {
    const res = await t.inject({ url: '/openapi.json' })
    assert.equal(res.statusCode, 200)
    const doc = res.json()
    assert.equal(doc.openapi, '3.1.0')
    assert.equal(doc.info.version, VERSION)
    for (const path of [
      '/api/devices',
      '/api/devices/{device_id}',
      '/api/devices/{device_id}/metrics',
      '/api/devices/{device_id}/energy',
      '/api/devices/{device_id}/raw-data',
      '/api/devices/{device_id}/commands',
      '/api/devices/{device_id}/alerts',
      '/api/alerts',
      '/api/stats',
      '/readyz',
    ]) {
      assert.ok(doc.paths[path], `missing ${path}`)
    }
    const create = doc.paths['/api/devices'].post
    assert.ok(create.requestBody.content['application/json'].schema.properties.device_id)
    assert.ok(create.responses['201'] && create.responses['409'] && create.responses['400'])
  })

  test('/openapi.json is a valid OpenAPI 3.1 document (with authentication on, the default)', async () => {
    const res = await t.inject({ url: '/openapi.json' })
    assert.equal(res.statusCode, 200, res.body)
    const result = await new Validator().validate(res.json())
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2))
  })

  test('/openapi.json answers without a token: the reference page loads it before anyone signs in', async () => {
    const res = await t.app.inject({ url: '/openapi.json' })
    assert.equal(res.statusCode, 200)
  })

  test('every route of the access policy is listed with its security', async () => {
    const doc = (await t.inject({ url: '/openapi.json' })).json()
    assert.deepEqual(Object.keys(doc.components.securitySchemes), ['bearerAuth'])
    for (const key of Object.keys(POLICY)) {
      const [method, route] = key.split(' ') as [string, string]
      const path = route.replace(/:([a-z_]+)/g, '{$1}').replace(/\*$/, '{*}')
      const operation = doc.paths[path]?.[method.toLowerCase()]
      assert.ok(operation, `${key} is missing from /openapi.json`)
      // /metrics is public while METRICS_TOKEN is unset (this build), every other non-public route needs a token.
      const open = ['public', 'metrics'].includes(accessFor(method, route))
      assert.deepEqual(operation.security, open ? [] : [{ bearerAuth: [] }], key)
    }
    for (const [path, operations] of Object.entries<Record<string, { security?: unknown }>>(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        assert.ok(Array.isArray(operation.security), `${method} ${path} says nothing about its security`)
      }
    }
  })

  test('/docs serves the reference page', async () => {
    const res = await t.inject({ url: '/docs' })
    assert.ok([200, 301, 302].includes(res.statusCode), String(res.statusCode))
    const page = res.statusCode === 200 ? res : await t.inject({ url: res.headers.location as string })
    assert.equal(page.statusCode, 200)
    assert.match(page.body, /openapi\.json|api-reference/i)
    // Under the strict policy (script-src 'self') the page has no inline script: it loads files.
    assert.match(String(page.headers['content-security-policy']), /script-src 'self';/)
    assert.doesNotMatch(page.body, /<script>|<script type="text\/javascript">/)
    for (const src of page.body.matchAll(/<script src="([^"]+)"/g)) {
      const script = await t.app.inject({ url: src[1] as string })
      assert.equal(script.statusCode, 200, src[1])
      assert.match(String(script.headers['content-type']), /javascript/)
    }
  })

  test('the version matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    assert.equal(VERSION, pkg.version)
  })
})

describe('OpenAPI reference with METRICS_TOKEN, and with authentication off', () => {
  test('/metrics needs a token when METRICS_TOKEN is set', async (ctx) => {
    const t = await build({ METRICS_TOKEN: 'metrics-token-0123456789abcdef' }, { t: ctx })
    const doc = (await t.inject({ url: '/openapi.json' })).json()
    assert.deepEqual(doc.paths['/metrics'].get.security, [{ bearerAuth: [] }])
    assert.deepEqual(doc.paths['/readyz'].get.security, [])
  })

  test('AUTH_DISABLED=true: still a valid document, no operation asks for a token', async (ctx) => {
    // Authentication off on purpose: the document must then not advertise a token it does not need.
    const t = await build({ AUTH_DISABLED: 'true' }, { t: ctx })
    const doc = (await t.app.inject({ url: '/openapi.json' })).json()
    assert.equal((await new Validator().validate(doc)).valid, true)
    for (const operations of Object.values<Record<string, { security?: unknown }>>(doc.paths)) {
      for (const operation of Object.values(operations)) assert.equal(operation.security, undefined)
    }
  })
})
