import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { app as appPlugin } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import {
  type Access,
  accessFor,
  hashToken,
  POLICY,
  type Role,
  TokenService,
  UNAUTHENTICATED,
} from '../../src/modules/auth/index.ts'
import { validatorCompiler } from '../../src/platform/validation.ts'
import { build, type TestApp } from '../helpers/build.ts'
import { createSchema, realDatabaseUrl, realMqttUrl, tempDir, uniqueName } from '../helpers/env.ts'
import { type ServerProcess, startServer } from '../helpers/process.ts'

const ADMIN_TOKEN = `admin-env-${randomBytes(12).toString('hex')}`
const METRICS_TOKEN = `metrics-env-${randomBytes(12).toString('hex')}`
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const unknownToken = () => `im_${randomBytes(32).toString('base64url')}`

/** Creates a stored token through the API with the environment's admin token. */
async function createToken(app: FastifyInstance, role: Role, name = `${role}-test`): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/tokens',
    headers: bearer(ADMIN_TOKEN),
    payload: { name, role },
  })
  assert.equal(res.statusCode, 201, res.body)
  return res.json().token
}

/** A token's last_used_at once its background write has landed (and differs from `not`); polls up to 2 s. */
async function lastUsedAt(app: FastifyInstance, id: number, not?: Date): Promise<Date | undefined> {
  let value: Date | null | undefined
  for (let i = 0; i < 100; i++) {
    const row = await app.db
      .selectFrom('api_tokens')
      .select('last_used_at')
      .where('id', '=', id)
      .executeTakeFirst()
    value = row?.last_used_at
    if (value && value.getTime() !== not?.getTime()) return value
    await new Promise((r) => setTimeout(r, 20))
  }
  return value ?? undefined
}

interface Route {
  method: string
  url: string
}

/** The production plugin tree on a bare Fastify, with an onRoute collector registered before it. */
async function buildCollecting(env: Record<string, string>) {
  const dir = tempDir()
  const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
  const config = loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    MQTT_BROKER_PORT: '0',
    DATA_DIR: dir.path,
    MQTT_CLIENT_ID: uniqueName('auth'),
    ...(schema ? { DATABASE_URL: schema.url } : {}),
    ...(realMqttUrl ? { MQTT_URL: realMqttUrl } : {}),
    ...env,
  })
  // A loaded 2-core machine can take more than the default 10 s to start PGlite and migrate.
  const server = Fastify({ logger: false, pluginTimeout: 60_000 })
  server.setValidatorCompiler(validatorCompiler)
  const routes: Route[] = []
  server.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url })
  })
  await server.register(appPlugin, { config, inMemoryDb: !config.DATABASE_URL })
  // A route nobody put in the policy table: default-deny must make it admin-only.
  await server.register(async (probe) => {
    probe.get('/api/zz-unlisted', async () => ({ ok: true }))
    probe.post('/api/zz-unlisted', async () => ({ ok: true }))
  })
  await server.ready()
  const close = async () => {
    await server.close()
    await schema?.drop()
    dir.remove()
  }
  return { app: server, routes, close }
}

const PROBES = new Set(['/api/zz-unlisted'])
const sampleUrl = (pattern: string) =>
  pattern
    .replace(':device_id', 'walk-dev')
    .replace(/:[A-Za-z_]+/g, '999999')
    .replace(/\*$/, 'x')

type Who = 'none' | 'bad token' | Role

/** What the policy promises: 401, 403, or 'through' (the route's own answer, never 401/403). */
function expected(access: Access, who: Who): 401 | 403 | 'through' {
  if (access === 'public') return 'through'
  if (who === 'none' || who === 'bad token') return 401
  const needed: Role = access === 'metrics' ? 'admin' : access
  const rank = { viewer: 0, operator: 1, admin: 2 }
  return rank[who] >= rank[needed] ? 'through' : 403
}

describe('every registered route × every caller follows the policy table', () => {
  let t: Awaited<ReturnType<typeof buildCollecting>>
  const headersOf: Record<Who, Record<string, string>> = {
    none: {},
    'bad token': bearer(unknownToken()),
    viewer: {},
    operator: {},
    admin: {},
  }
  before(async () => {
    t = await buildCollecting({ AUTH_DISABLED: 'false', ADMIN_TOKEN, METRICS_TOKEN, RATE_LIMIT_MAX: '0' })
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      headersOf[role] = bearer(await createToken(t.app, role))
    }
  })
  after(() => t.close())

  test('the walk covers the API', () => {
    const urls = new Set(t.routes.map((r) => r.url))
    for (const url of ['/api/devices', '/api/tokens', '/api/stats', '/health', '/metrics']) {
      assert.ok(urls.has(url), url)
    }
  })

  test('each route answers 401 / 403 / its own answer, as the table says', async () => {
    const failures: string[] = []
    for (const { method, url } of t.routes) {
      const access = accessFor(method, url)
      for (const who of Object.keys(headersOf) as Who[]) {
        const res = await t.app.inject({
          method: method as 'GET',
          url: sampleUrl(url),
          headers: headersOf[who],
        })
        const want = expected(access, who)
        const ok =
          want === 'through' ? res.statusCode !== 401 && res.statusCode !== 403 : res.statusCode === want
        if (!ok) failures.push(`${method} ${url} as ${who}: ${res.statusCode}, want ${want} (${access})`)
        if (method === 'HEAD') continue
        if (res.statusCode === 401) {
          assert.deepEqual(res.json(), { error: UNAUTHENTICATED, code: 'unauthenticated' })
          assert.equal(res.headers['www-authenticate'], 'Bearer')
        }
        if (res.statusCode === 403) {
          const needed = access === 'metrics' ? 'admin' : access
          assert.deepEqual(res.json(), { error: `This needs the ${needed} role`, code: 'forbidden' })
        }
      }
    }
    assert.deepEqual(failures, [])
  })

  test('a route without a policy entry is admin-only', async () => {
    assert.equal(accessFor('GET', '/api/zz-unlisted'), 'admin')
    assert.equal(accessFor('POST', '/api/zz-unlisted'), 'admin')
    const get = (who: Who) => t.app.inject({ url: '/api/zz-unlisted', headers: headersOf[who] })
    assert.equal((await get('operator')).statusCode, 403)
    assert.equal((await get('admin')).statusCode, 200)
  })

  test('every /api route has its own entry and every entry names a registered route', () => {
    const registered = new Set(t.routes.map((r) => `${r.method === 'HEAD' ? 'GET' : r.method} ${r.url}`))
    const unlisted = [...registered].filter((key) => {
      const url = key.slice(key.indexOf(' ') + 1)
      return url.startsWith('/api/') && !PROBES.has(url) && !(key in POLICY)
    })
    assert.deepEqual(unlisted, [], 'add these routes to POLICY in src/modules/auth/policy.ts')
    const stale = Object.keys(POLICY).filter((key) => !registered.has(key))
    assert.deepEqual(stale, [], 'these POLICY entries match no route')
    for (const key of registered) {
      const [method, url] = key.split(' ') as [string, string]
      if (!url.startsWith('/api/') && method !== 'GET') assert.ok(key in POLICY, `${key} outside /api`)
    }
  })
})

describe('tokens, errors, headers and metrics', () => {
  let t: TestApp
  before(async () => {
    t = await build({ AUTH_DISABLED: 'false', ADMIN_TOKEN, METRICS_TOKEN, RATE_LIMIT_MAX: '0' })
  })
  after(() => t.close())

  test('401 without, with a malformed and with an unknown token; tokens in the query string are ignored', async () => {
    for (const headers of [
      {},
      { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      { authorization: 'Bearer' },
      bearer(unknownToken()),
      bearer(ADMIN_TOKEN.slice(0, -1)),
    ]) {
      const res = await t.app.inject({ url: '/api/devices', headers })
      assert.equal(res.statusCode, 401, JSON.stringify(headers))
      assert.deepEqual(res.json(), { error: 'Missing or invalid bearer token', code: 'unauthenticated' })
      assert.equal(res.headers['www-authenticate'], 'Bearer')
    }
    const viaQuery = await t.app.inject({ url: `/api/devices?access_token=${ADMIN_TOKEN}` })
    assert.equal(viaQuery.statusCode, 401)
    const lowerCase = await t.app.inject({
      url: '/api/devices',
      headers: { authorization: `bearer ${ADMIN_TOKEN}` },
    })
    assert.equal(lowerCase.statusCode, 200)
  })

  test('a token is shown once, stored only as its SHA-256, listed without secrets, and revocable at once', async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/tokens',
      headers: bearer(ADMIN_TOKEN),
      payload: { name: 'grafana', role: 'viewer' },
    })
    assert.equal(created.statusCode, 201)
    const body = created.json()
    assert.deepEqual(Object.keys(body).sort(), ['created_at', 'id', 'name', 'role', 'token'])
    assert.match(body.token, /^im_[A-Za-z0-9_-]{43}$/)

    const rows = await t.app.db.selectFrom('api_tokens').selectAll().where('id', '=', body.id).execute()
    assert.equal(rows[0]?.token_hash, hashToken(body.token))
    assert.ok(!JSON.stringify(rows).includes(body.token), 'the token itself is nowhere in the table')

    const use = await t.app.inject({ url: '/api/devices', headers: bearer(body.token) })
    assert.equal(use.statusCode, 200)
    const list = await t.app.inject({ url: '/api/tokens', headers: bearer(ADMIN_TOKEN) })
    assert.equal(list.statusCode, 200)
    assert.ok(!list.body.includes(body.token) && !list.body.includes('token_hash'))
    const listed = list.json().find((x: { id: number }) => x.id === body.id)
    assert.equal(listed.name, 'grafana')
    assert.equal(listed.revoked_at, null)
    assert.ok(await lastUsedAt(t.app, body.id), 'last_used_at is recorded')

    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/api/tokens/${body.id}`,
      headers: bearer(ADMIN_TOKEN),
    })
    assert.equal(revoked.statusCode, 200)
    assert.ok(revoked.json().revoked_at)
    const after = await t.app.inject({ url: '/api/devices', headers: bearer(body.token) })
    assert.equal(after.statusCode, 401, 'revocation on this instance bites at once')

    const missing = await t.app.inject({
      method: 'DELETE',
      url: '/api/tokens/999999',
      headers: bearer(ADMIN_TOKEN),
    })
    assert.deepEqual(
      [missing.statusCode, missing.json()],
      [404, { error: 'Token not found', code: 'not_found' }],
    )
  })

  test('token creation validates name and role', async () => {
    for (const payload of [
      { name: 'x', role: 'root' },
      { role: 'viewer' },
      { name: '', role: 'viewer' },
      {},
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/tokens',
        headers: bearer(ADMIN_TOKEN),
        payload,
      })
      assert.equal(res.statusCode, 400, JSON.stringify(payload))
    }
  })

  test('roles: viewer reads, operator acts on devices, only admin manages devices and tokens', async () => {
    const viewer = bearer(await createToken(t.app, 'viewer'))
    const operator = bearer(await createToken(t.app, 'operator'))
    const admin = bearer(await createToken(t.app, 'admin'))
    const device = { device_id: 'auth-dev-1', device_name: 'A' }
    const post = (url: string, headers: Record<string, string>, payload: object = {}) =>
      t.app.inject({ method: 'POST', url, headers, payload })
    assert.equal((await post('/api/devices', operator, device)).statusCode, 403)
    assert.equal((await post('/api/devices', admin, device)).statusCode, 201)
    assert.equal((await t.app.inject({ url: '/api/devices/auth-dev-1', headers: viewer })).statusCode, 200)
    assert.deepEqual((await post('/api/devices/auth-dev-1/heartbeat', viewer)).json(), {
      error: 'This needs the operator role',
      code: 'forbidden',
    })
    assert.equal((await post('/api/devices/auth-dev-1/heartbeat', operator)).statusCode, 200)
    const alert = await post('/api/devices/auth-dev-1/alerts', operator, { message: 'door open' })
    assert.equal(alert.statusCode, 201)
    assert.equal((await post(`/api/alerts/${alert.json().id}/acknowledge`, operator)).statusCode, 200)
    const key = (headers: Record<string, string>) =>
      t.app.inject({ url: '/api/devices/auth-dev-1/command-key', headers })
    assert.equal((await key(operator)).statusCode, 403, 'a command key is a secret: admin only')
    assert.equal((await key(admin)).statusCode, 200)
    assert.equal((await t.app.inject({ url: '/api/tokens', headers: operator })).statusCode, 403)
  })

  test('/metrics needs METRICS_TOKEN or an admin token when METRICS_TOKEN is set; health stays open', async () => {
    const metrics = (headers: Record<string, string>) => t.app.inject({ url: '/metrics', headers })
    assert.equal((await metrics({})).statusCode, 401)
    assert.equal((await metrics(bearer(METRICS_TOKEN))).statusCode, 200)
    assert.equal((await metrics(bearer(ADMIN_TOKEN))).statusCode, 200)
    assert.equal((await metrics(bearer(await createToken(t.app, 'viewer')))).statusCode, 403)
    assert.equal((await metrics(bearer(unknownToken()))).statusCode, 401)
    for (const url of ['/health', '/healthz', '/readyz']) {
      const res = await t.app.inject({ url, headers: bearer(unknownToken()) })
      assert.ok([200, 503].includes(res.statusCode), `${url}: ${res.statusCode}`)
    }
  })

  test('unknown paths: 401 under /api without a token, 404 with one and outside /api', async () => {
    assert.equal((await t.app.inject({ url: '/api/no-such-thing' })).statusCode, 401)
    const known = await t.app.inject({ url: '/api/no-such-thing', headers: bearer(ADMIN_TOKEN) })
    assert.equal(known.statusCode, 404)
    assert.equal((await t.app.inject({ url: '/no-such-page' })).statusCode, 404)
  })

  test('security headers on every answer, a CSP that allows same-origin scripts only, no CORS by default', async () => {
    for (const res of [
      await t.app.inject({ url: '/health' }),
      await t.app.inject({ url: '/api/devices', headers: { origin: 'https://evil.example' } }),
    ]) {
      const csp = String(res.headers['content-security-policy'])
      assert.match(csp, /default-src 'self'/)
      assert.match(csp, /script-src 'self'(;|$)/)
      assert.match(csp, /frame-ancestors 'none'/)
      assert.equal(res.headers['x-content-type-options'], 'nosniff')
      assert.equal(res.headers['access-control-allow-origin'], undefined)
    }
  })

  test('the cache: a revocation made elsewhere bites within the TTL; last_used_at is written once a minute', async () => {
    let now = 1_000_000
    const tokens = new TokenService(t.app.db, { cacheTtlMs: 30_000, now: () => now })
    const created = await tokens.create('cache-probe', 'operator')
    assert.equal((await tokens.verify(created.token))?.role, 'operator')
    const first = await lastUsedAt(t.app, created.id)
    assert.ok(first)
    now += 10_000
    await tokens.verify(created.token)
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(await lastUsedAt(t.app, created.id), first, 'no second write within a minute')
    now += 55_000
    await tokens.verify(created.token)
    const second = await lastUsedAt(t.app, created.id, first)
    assert.ok(second && second.getTime() > first.getTime(), 'written again after a minute')

    // Another replica (or the CLI) revokes it: this one trusts its cache until the TTL ends.
    await t.app.db
      .updateTable('api_tokens')
      .set({ revoked_at: new Date() })
      .where('id', '=', created.id)
      .execute()
    now += 29_000
    assert.equal((await tokens.verify(created.token))?.role, 'operator')
    now += 2_000
    assert.equal(await tokens.verify(created.token), undefined)
  })
})

describe('rate limits and CORS', () => {
  let t: TestApp
  before(async () => {
    t = await build({
      AUTH_DISABLED: 'false',
      ADMIN_TOKEN,
      RATE_LIMIT_MAX: '3',
      RATE_LIMIT_WINDOW_MS: '60000',
      CORS_ORIGINS: 'https://dash.example, https://ops.example',
    })
  })
  after(() => t.close())

  test('per token (else per address), 429 in the error format; health and metrics are exempt', async () => {
    const viewer = bearer(await createToken(t.app, 'viewer'))
    const calls = []
    for (let i = 0; i < 4; i++) calls.push(await t.app.inject({ url: '/api/stats', headers: viewer }))
    assert.deepEqual(
      calls.map((r) => r.statusCode),
      [200, 200, 200, 429],
    )
    const limited = calls[3]
    assert.match(limited?.json().error, /^Rate limit exceeded/)
    assert.ok(limited?.headers['retry-after'])
    const operator = bearer(await createToken(t.app, 'operator'))
    assert.equal(
      (await t.app.inject({ url: '/api/stats', headers: operator })).statusCode,
      200,
      'its own budget',
    )

    // Failed attempts count against the address: guessing tokens runs into the limit too.
    const guesses = []
    for (let i = 0; i < 4; i++) {
      guesses.push((await t.app.inject({ url: '/api/stats', headers: bearer(unknownToken()) })).statusCode)
    }
    assert.deepEqual(guesses, [401, 401, 401, 429])
    for (const url of ['/health', '/healthz', '/readyz', '/metrics']) {
      const res = await t.app.inject({ url })
      assert.ok([200, 503].includes(res.statusCode), `${url} exempt: ${res.statusCode}`)
    }
  })

  test('CORS answers the allow-listed origins only, preflight without a token', async () => {
    const preflight = (origin: string) =>
      t.app.inject({
        method: 'OPTIONS',
        url: '/api/devices',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization',
        },
      })
    const allowed = await preflight('https://ops.example')
    assert.equal(allowed.statusCode, 204)
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://ops.example')
    assert.match(String(allowed.headers['access-control-allow-headers']), /authorization/)
    const refused = await preflight('https://evil.example')
    assert.equal(refused.headers['access-control-allow-origin'], undefined)
  })
})

const cli = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const tokenCli = (env: Record<string, string>, ...args: string[]) =>
  cli(process.execPath, ['--import', 'tsx', 'src/cli/token.ts', ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
  })

async function stop(server: ServerProcess): Promise<void> {
  server.child.kill('SIGTERM')
  assert.equal((await server.exited).code, 0, server.output())
}

test('first start prints one admin token; the CLI creates, lists and revokes on the same database', async (ctx) => {
  const dir = tempDir()
  const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
  ctx.after(async () => {
    await schema?.drop()
    dir.remove()
  })
  const env = {
    DATA_DIR: dir.path,
    MQTT_CLIENT_ID: uniqueName('auth-process'),
    AUTH_DISABLED: 'false',
    ...(schema ? { DATABASE_URL: schema.url } : {}),
  }
  const first = await startServer(env)
  // The token's line follows the start-up ("ready"), just after "Server listening".
  const deadline = Date.now() + 10_000
  while (!/shown only this once/.test(first.output()) && Date.now() < deadline) await delay(50)
  const shown = /"level":40,.*shown only this once: (im_[A-Za-z0-9_-]{43})/.exec(first.output())
  assert.ok(shown?.[1], first.output())
  const admin = bearer(shown[1])
  assert.equal((await fetch(`${first.baseUrl}/api/devices`)).status, 401)
  assert.equal((await fetch(`${first.baseUrl}/api/tokens`, { headers: admin })).status, 200)
  await stop(first)

  const created = await tokenCli(env, 'create', '--role', 'viewer', '--name', 'ci reader')
  const viewerToken = /^(im_[A-Za-z0-9_-]{43})$/m.exec(created.stdout)?.[1]
  assert.ok(viewerToken, created.stdout)
  const listed = await tokenCli(env, 'list')
  assert.match(listed.stdout, /\tadmin\tbootstrap-admin\t/)
  assert.match(listed.stdout, /\tviewer\tci reader\t/)
  assert.ok(!listed.stdout.includes('im_'), 'no secrets in the list')

  const second = await startServer(env)
  assert.doesNotMatch(
    second.output(),
    /shown only this once/,
    'an admin token exists: nothing new is printed',
  )
  const headers = bearer(viewerToken)
  assert.equal((await fetch(`${second.baseUrl}/api/devices`, { headers })).status, 200)
  assert.equal((await fetch(`${second.baseUrl}/api/tokens`, { headers })).status, 403)
  if (!schema) {
    await assert.rejects(tokenCli(env, 'list'), /is open \(is the server running\?\)/)
  }
  await stop(second)

  const id = /created token (\d+)/.exec(created.stdout)?.[1] as string
  assert.match((await tokenCli(env, 'revoke', id)).stdout, new RegExp(`revoked token ${id} "ci reader"`))
  assert.match(
    (await tokenCli(env, 'list')).stdout,
    new RegExp(`^${id}\\tviewer\\tci reader\\t\\S+\\t\\S+\\t20`, 'm'),
  )
  await assert.rejects(tokenCli(env, 'create', '--role', 'root'), /--role: one of viewer, operator, admin/)

  const open = await startServer({ ...env, AUTH_DISABLED: 'true' })
  assert.match(open.output(), /"level":40,.*HTTP authentication is OFF \(AUTH_DISABLED=true\)/)
  assert.equal((await fetch(`${open.baseUrl}/api/tokens`)).status, 200)
  await stop(open)
})
