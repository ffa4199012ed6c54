import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import Fastify from 'fastify'
import { loggerOptions } from '../../src/platform/logging.ts'
import { build } from '../helpers/build.ts'

// Issue 16 rows 5 and 8.
test('row 5: a body nested 5,000 levels deep is a 400, not a stack overflow (500)', async (ctx) => {
  const t = await build({}, { t: ctx })
  const metadata = `${'{"a":'.repeat(5000)}{}${'}'.repeat(5000)}`
  for (const [method, url] of [
    ['POST', '/api/devices'],
    ['PUT', '/api/devices/some-meter'],
  ] as const) {
    const res = await t.inject({
      method,
      url,
      headers: { 'content-type': 'application/json' },
      payload: `{"device_id":"deep-1","device_name":"d","metadata":${metadata}}`,
    })
    assert.equal(res.statusCode, 400, res.body)
    assert.match(res.json().error, /nested deeper than 32/)
  }
  const shallow = await t.inject({
    method: 'POST',
    url: '/api/devices',
    payload: { device_id: 'shallow-1', device_name: 'd', metadata: { a: { b: { c: [1, { d: 2 }] } } } },
  })
  assert.equal(shallow.statusCode, 201, shallow.body)
})

test('row 8: a token sent in the query string is not written to the request log', async () => {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk))
      done()
    },
  })
  const app = Fastify({ logger: { ...(loggerOptions('info') as object), stream } })
  app.get('/api/devices', async () => [])
  try {
    await app.inject({ url: '/api/devices?token=im_SECRETSECRET&limit=5&api_key=K3Y&Sig=abc' })
    const logged = lines.join('')
    assert.ok(
      logged.includes('/api/devices?token=[redacted]&limit=5&api_key=[redacted]&Sig=[redacted]'),
      logged,
    )
    for (const secret of ['im_SECRETSECRET', 'K3Y', 'abc']) assert.ok(!logged.includes(secret), secret)
  } finally {
    await app.close()
  }
})

test('row 6: a burst of 50 calls to the open /readyz runs its checks (one database query) once', async (ctx) => {
  const t = await build({}, { t: ctx })
  let runs = 0
  t.app.readiness.add('counted', () => {
    runs++
  })
  const answers = await Promise.all(Array.from({ length: 50 }, () => t.inject({ url: '/readyz' })))
  assert.ok(answers.every((a) => a.statusCode === 200))
  assert.equal(runs, 1)
})

// Issue 16 row 7: the router answered bad URLs itself, before authentication, without the security
// headers, in Fastify's own shape echoing the URL.
test('row 7: URL errors come after authentication, with the security headers, without the URL', async (ctx) => {
  const t = await build({}, { t: ctx })
  const long = `/api/devices/${'a'.repeat(300)}`
  const badEncoding = '/api/devices/%E0%A4%A/raw-data'
  for (const url of [long, badEncoding]) {
    const anonymous = await t.app.inject({ url })
    assert.equal(anonymous.statusCode, 401, anonymous.body)
    assert.deepEqual(anonymous.json(), { error: 'Missing or invalid bearer token', code: 'unauthenticated' })
    assert.equal(anonymous.headers['x-content-type-options'], 'nosniff')
    assert.ok(anonymous.headers['content-security-policy'])
  }
  const tooLong = await t.inject({ url: long })
  assert.equal(tooLong.statusCode, 414)
  const bad = await t.inject({ url: badEncoding })
  assert.equal(bad.statusCode, 400)
  for (const res of [tooLong, bad]) {
    assert.deepEqual(Object.keys(res.json()), ['error', 'code'])
    assert.ok(!res.body.includes('aaaa') && !res.body.includes('%E0'), `no echo: ${res.body}`)
    assert.equal(res.headers['x-frame-options'], 'DENY')
    assert.ok(res.headers['x-request-id'])
  }
})
