import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { VERSION } from '../src/version.ts'
import { build, type TestApp } from './helpers/build.ts'

describe('OpenAPI reference', () => {
  let t: TestApp
  before(async () => {
    t = await build()
  })
  after(() => t.close())

  test('/openapi.json documents every /api route with its schemas', async () => {
    const res = await t.app.inject({ url: '/openapi.json' })
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

  test('/docs serves the reference page', async () => {
    const res = await t.app.inject({ url: '/docs' })
    assert.ok([200, 301, 302].includes(res.statusCode), String(res.statusCode))
    const page = res.statusCode === 200 ? res : await t.app.inject({ url: res.headers.location as string })
    assert.equal(page.statusCode, 200)
    assert.match(page.body, /openapi\.json|api-reference/i)
  })

  test('the version matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    assert.equal(VERSION, pkg.version)
  })
})
