import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import Fastify from 'fastify'
import { NotFoundError } from '../../src/platform/domain-errors.ts'
import { installErrorHandler } from '../../src/platform/errors.ts'
import { build, type TestApp } from '../helpers/build.ts'

describe('health, readiness, metrics', () => {
  let t: TestApp
  before(async () => {
    t = await build()
  })
  after(() => t.close())

  test('/health keeps the earlier contract', async () => {
    const res = await t.inject({ url: '/health' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { status: 'healthy', service: 'iot-meter' })
  })

  test('/healthz answers while the process runs', async () => {
    const res = await t.inject({ url: '/healthz' })
    assert.equal(res.statusCode, 200)
    assert.equal(res.json().status, 'alive')
  })

  test('/readyz is 200 when database and broker answer', async () => {
    // The MQTT client connects asynchronously; give it a moment.
    let res = await t.inject({ url: '/readyz' })
    for (let i = 0; i < 50 && res.statusCode !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100))
      res = await t.inject({ url: '/readyz' })
    }
    assert.equal(res.statusCode, 200)
    assert.equal(res.json().status, 'ready')
    assert.equal(res.json().checks.database, 'ok')
    assert.equal(res.json().checks.mqtt, 'ok')
  })

  test('/readyz is 503 naming the failed check', async () => {
    t.app.readiness.add('probe', () => {
      throw new Error('probe is down')
    })
    const res = await t.inject({ url: '/readyz' })
    assert.equal(res.statusCode, 503)
    assert.equal(res.json().status, 'not ready')
    assert.equal(res.json().checks.probe, 'probe is down')
    t.app.readiness.add('probe', () => undefined)
  })

  test('/metrics exposes HTTP histograms in Prometheus text', async () => {
    await t.inject({ url: '/api/devices' })
    const res = await t.inject({ url: '/metrics' })
    assert.equal(res.statusCode, 200)
    assert.match(res.headers['content-type'] as string, /text\/plain/)
    assert.match(res.body, /http_request_duration_seconds_bucket\{.*route="\/api\/devices"/)
    assert.match(res.body, /process_resident_memory_bytes/)
  })

  test('every response carries a request id, and a sane caller id is kept', async () => {
    const res = await t.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } })
    assert.equal(res.headers['x-request-id'], 'abc-123')
    const minted = await t.inject({ url: '/health', headers: { 'x-request-id': 'bad id with spaces' } })
    assert.match(minted.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/)
  })
})

describe('error handler', () => {
  test('masks unexpected failures and passes deliberate ones through', async () => {
    const app = Fastify({ logger: false })
    installErrorHandler(app)
    app.get('/boom', async () => {
      throw new Error('syntax error at or near "select" in /srv/app/src/repository.ts:12')
    })
    app.get('/gone', async () => {
      throw new NotFoundError('Thing not found')
    })
    const boom = await app.inject({ url: '/boom' })
    assert.equal(boom.statusCode, 500)
    assert.deepEqual(boom.json(), { error: 'Internal server error', code: 'internal' })
    const gone = await app.inject({ url: '/gone' })
    assert.equal(gone.statusCode, 404)
    assert.deepEqual(gone.json(), { error: 'Thing not found', code: 'not_found' })
    await app.close()
  })
})
