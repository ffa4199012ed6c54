import assert from 'node:assert/strict'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, describe, test } from 'node:test'
import { sql } from 'kysely'
import { FsArchiveStore, InvalidArchiveKey } from '../../src/modules/archive/index.ts'
import { isDeviceId } from '../../src/protocol/device-id.ts'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import {
  connectDevice,
  dcTelemetry,
  metricValue,
  publishJson,
  registerDevice,
  waitFor,
} from '../helpers/device.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../helpers/env.ts'

// Issue 16 row 2: one device-id grammar everywhere; a legacy `..` must never stall the fleet.
describe('device-id grammar', () => {
  test('the grammar: never `.`, `..` or a leading dot, never a separator', () => {
    for (const ok of ['a', 'meter-01', 'x.y', 'a..b', '_', '-', 'A'.repeat(64)]) assert.ok(isDeviceId(ok), ok)
    for (const bad of ['', '.', '..', '.hidden', 'a/b', 'a+b', 'a#', 'a b', 'A'.repeat(65), 'é', 'a\u0000'])
      assert.ok(!isDeviceId(bad), JSON.stringify(bad))
  })

  test('archive keys: files refuse anything that could leave a directory or name another device (S3 shares the check)', async () => {
    const dir = tempDir()
    const store = new FsArchiveStore(dir.path)
    for (const bad of [
      './x/y.ndjson',
      '../x.ndjson',
      'd/../e/x.ndjson',
      'd//x.ndjson',
      'd/./x',
      '/d/x',
      '',
      'd/x/',
    ])
      await assert.rejects(store.put(bad, Buffer.from('{}\n')), InvalidArchiveKey, bad)
    try {
      await store.put('meter-1/telemetry/2026/12/04/101010000-run-0.ndjson', Buffer.from('{}\n'))
      assert.equal(await store.get('../meter-1/telemetry/2026/12/04/101010000-run-0.ndjson'), undefined)
      await store.put('a..b/telemetry/x.ndjson', Buffer.from('{}\n'))
      assert.equal((await store.list('a..b/', 10)).length, 1)
    } finally {
      dir.remove()
    }
  })
})

describe('a legacy device id `..` registered before the grammar', () => {
  const dir = tempDir()
  let schema: Awaited<ReturnType<typeof createSchema>> | undefined
  after(async () => {
    await schema?.drop()
    dir.remove()
  })

  test('API refuses it; its messages are rejected; the fleet is stored and archived; start reports it; it can be deleted', async () => {
    schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
    const env = {
      ...(schema ? { DATABASE_URL: schema.url } : { DATA_DIR: dir.path }),
      INGEST_FLUSH_MS: '50',
      ARCHIVE_FLUSH_MS: '100',
    }
    const healthy = uniqueName('ok')
    let first: TestApp | undefined = await build(env, { inMemoryDb: false })
    try {
      for (const id of ['..', '.', '.hidden']) {
        const res: { statusCode: number } = await first.inject({
          method: 'POST',
          url: '/api/devices',
          payload: { device_id: id, device_name: id },
        })
        assert.equal(res.statusCode, 400, id)
      }
      // As an older version let it in (the column's own check allowed `..`).
      await sql`alter table devices drop constraint devices_device_id_grammar`.execute(first.app.db)
      await sql`insert into devices (device_id, device_name) values ('..', 'dotdot'), ('.', 'dot')`.execute(
        first.app.db,
      )
      await sql`alter table devices add constraint devices_device_id_grammar
        check (device_id ~ '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$') not valid`.execute(first.app.db)
      await registerDevice(first, healthy)

      const bad = await connectDevice(brokerUrl(first), uniqueName('dotdot'))
      const good = await connectDevice(brokerUrl(first), uniqueName('good'))
      const t0 = Date.now() - 60_000
      for (let seq = 0; seq < 5; seq++) {
        await publishJson(bad, 'iot/../telemetry', dcTelemetry('..', seq, t0 + seq * 10_000))
        await publishJson(bad, 'iot/./telemetry', dcTelemetry('.', seq, t0 + seq * 10_000))
        await publishJson(good, `iot/${healthy}/telemetry`, dcTelemetry(healthy, seq, t0 + seq * 10_000))
      }
      await bad.endAsync()
      await good.endAsync()
      const app = first
      await waitFor(
        async () => (await app.inject({ url: `/api/devices/${healthy}/raw-data` })).json().length > 0,
        15_000,
        'the healthy device archived',
      )
      // Not device topics: the embedded broker passes them by the ingest, an external one's are rejected.
      if (first.config.MQTT_URL)
        await waitFor(
          async () => (await metricValue(app, 'ingest_rejected_total', 'reason="topic"')) >= 10,
          15_000,
          'rejections',
        )
      const stored = await sql<{ n: number }>`
        select count(*)::int as n from telemetry t join devices d on d.id = t.device_pk
        where d.device_id in ('..', '.')`.execute(first.app.db)
      assert.equal(Number(stored.rows[0]?.n), 0)
      const ready = await first.inject({ url: '/readyz' })
      assert.equal(ready.statusCode, 200, ready.body)
      await first.close()
      first = undefined

      const second = await build(env, { inMemoryDb: false })
      try {
        assert.equal(await metricValue(second, 'devices_invalid_id'), 2)
        assert.equal((await second.inject({ url: '/readyz' })).statusCode, 200)
        // Over a real socket: HTTP clients (and inject) resolve `..` in a path unless told not to
        // (`curl --path-as-is`), and an operator deletes it that way.
        await second.app.listen({ port: 0, host: '127.0.0.1' })
        const port = (second.app.server.address() as AddressInfo).port
        assert.equal(
          (await rawRequest(port, 'GET', '/api/devices/./raw-data', second.adminToken)).status,
          400,
        )
        const del = await rawRequest(port, 'DELETE', '/api/devices/..', second.adminToken)
        assert.equal(del.status, 200, del.body)
        assert.equal(
          (await rawRequest(port, 'GET', '/api/devices/../raw-data', second.adminToken)).status,
          400,
        )
      } finally {
        await second.close()
      }
    } finally {
      await first?.close()
    }
  })
})

/** A request whose path is sent exactly as given (no `..` resolution). */
function rawRequest(
  port: number,
  method: string,
  path: string,
  token: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${token}` }
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = ''
      res.on('data', (c) => {
        body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}
