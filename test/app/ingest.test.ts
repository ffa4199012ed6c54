import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import type { MqttClient } from 'mqtt'
import { encodeBinaryTelemetry } from '../../src/protocol/index.ts'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import {
  connectDevice,
  dcTelemetry,
  hello,
  metricValue,
  publishJson,
  registerDevice,
  waitFor,
} from '../helpers/device.ts'
import { uniqueName } from '../helpers/env.ts'

describe('ingest pipeline', () => {
  let t: TestApp
  let device: MqttClient
  const T0 = Date.now() - 3600_000

  before(async () => {
    t = await build({ INGEST_FLUSH_MS: '50', INGEST_GAP_GRACE_MS: '300', LIVENESS_SWEEP_MS: '200' })
    device = await connectDevice(brokerUrl(t), uniqueName('probe'))
    if (t.config.MQTT_URL) {
      // The server's subscription on an external broker is asynchronous: wait until it receives.
      const id = uniqueName('warmup')
      await registerDevice(t, id)
      await waitFor(
        async () => {
          await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, 0, T0))
          return (await rows(id)) > 0
        },
        15000,
        'server subscription',
      )
    }
  })
  after(async () => {
    await device.endAsync()
    await t.close()
  })

  const rows = async (deviceId: string) => {
    const r = await sql<{ n: number }>`
      select count(*)::int as n from telemetry t join devices d on d.id = t.device_pk where d.device_id = ${deviceId}`.execute(
      t.app.db,
    )
    return Number(r.rows[0]?.n ?? 0)
  }
  const points = async (deviceId: string, metric: string) =>
    (
      await t.inject({
        url: `/api/devices/${deviceId}/metrics?metric=${metric}&start=${new Date(T0 - 86400_000).toISOString()}&stop=now()`,
      })
    ).json()

  test('v2 telemetry lands in the store and the archive within a second or so', async () => {
    const id = uniqueName('dev')
    await registerDevice(t, id)
    await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, 0, T0))
    const voltage = await waitFor(async () => {
      const p = await points(id, 'voltage_dc')
      return p.length === 10 ? p : null
    })
    assert.equal(voltage[0].value, 750)
    assert.equal(voltage[0].device_id, id)
    assert.equal(voltage[0].time, new Date(T0).toISOString())
    const power = await points(id, 'power_active')
    assert.equal(power.length, 10)
    assert.equal(power[0].value, 225000)
    const archived = await waitFor(async () => {
      const list = (await t.inject({ url: `/api/devices/${id}/raw-data` })).json()
      return list.length > 0 ? list : null
    }, 3000)
    assert.match(archived[0].filename, new RegExp(`^${id}/telemetry/\\d{4}/\\d\\d/\\d\\d/`))
    const relative = archived[0].filename.slice(id.length + 1)
    const download = await t.inject({ url: `/api/devices/${id}/raw-data/${relative}` })
    assert.equal(download.statusCode, 200)
    const line = JSON.parse(download.body.trim().split('\n')[0] as string)
    assert.equal(line.message.seq, 0)
    assert.equal(line.topic, `iot/${id}/telemetry`)
    const registered = (await t.inject({ url: `/api/devices/${id}` })).json()
    assert.equal(registered.connection_status, 'online')
    assert.ok(registered.last_seen)
  })

  test('a binary datagram is stored as its JSON twin would be, deduplicated, and archived as base64', async () => {
    const id = uniqueName('bin')
    await registerDevice(t, id)
    const samples = Array.from({ length: 10 }, (_, i) => ({ offsetMs: i * 1000, values: [750, 0.3] }))
    const binary = encodeBinaryTelemetry({
      deviceId: id,
      seq: 0,
      ts: T0 + 10_000,
      t0: T0,
      types: [
        { name: 'voltage_dc', unit: 'V' },
        { name: 'current_dc', unit: 'kA' },
      ],
      samples,
    })
    const dupBefore = await metricValue(t, 'ingest_duplicates_total')
    await device.publishAsync(`iot/${id}/telemetry`, binary, { qos: 1 })
    await device.publishAsync(`iot/${id}/telemetry`, binary, { qos: 1 })
    await waitFor(async () => (await metricValue(t, 'ingest_duplicates_total')) - dupBefore >= 1)
    const power = await waitFor(async () => {
      const p = await points(id, 'power_active')
      return p.length === 10 ? p : null
    })
    assert.equal(power[0].value, 225000)
    assert.equal(power[0].time, new Date(T0).toISOString())
    assert.equal((await points(id, 'current_dc'))[9].value, 300)
    assert.equal(await rows(id), 1, 'the second copy was dropped')
    const archived = await waitFor(async () => {
      const list = (await t.inject({ url: `/api/devices/${id}/raw-data` })).json()
      return list.length > 0 ? list : null
    }, 3000)
    const download = await t.inject({
      url: `/api/devices/${id}/raw-data/${archived[0].filename.slice(id.length + 1)}`,
    })
    const line = JSON.parse(download.body.trim().split('\n')[0] as string)
    assert.equal(line.message, undefined)
    assert.deepEqual(Buffer.from(line.message_base64, 'base64'), binary)
  })

  test('each message is one archive line: raw bytes kept, line breaks of a pretty-printed payload removed', async () => {
    const id = uniqueName('lines')
    await registerDevice(t, id)
    const compact = JSON.stringify(dcTelemetry(id, 0, T0, 2))
    const pretty = JSON.stringify(dcTelemetry(id, 1, T0 + 2000, 2), null, 2)
    await device.publishAsync(`iot/${id}/telemetry`, compact, { qos: 1 })
    await device.publishAsync(`iot/${id}/telemetry`, pretty, { qos: 1 })
    const download = (filename: string) =>
      t.inject({ url: `/api/devices/${id}/raw-data/${filename.slice(id.length + 1)}` })
    const lines = (await waitFor(async () => {
      const list = (await t.inject({ url: `/api/devices/${id}/raw-data` })).json() as {
        filename: string
      }[]
      const bodies = await Promise.all(list.map(async (o) => (await download(o.filename)).body))
      const all = bodies.flatMap((b) => b.split('\n').filter((l) => l.length > 0))
      return all.length >= 2 ? all : null
    }, 5000)) as string[]
    assert.equal(lines.length, 2, 'one line per message, whatever its formatting')
    const parsed = lines.map((l) => JSON.parse(l)).sort((a, b) => a.message.seq - b.message.seq)
    assert.deepEqual(parsed[0].message, JSON.parse(compact))
    assert.deepEqual(parsed[1].message, JSON.parse(pretty))
    assert.ok(
      lines.some((l) => l.includes(compact)),
      'a one-line payload is archived byte for byte',
    )
  })

  test('v1 payloads are accepted, one measurement per numeric field', async () => {
    const id = uniqueName('v1')
    await registerDevice(t, id)
    const ts = new Date(T0).toISOString()
    await publishJson(device, `iot/${id}/telemetry`, {
      timestamp: ts,
      device_id: id,
      temperature: 25.7,
      unit: 'celsius',
    })
    const temp = await waitFor(async () => {
      const p = await points(id, 'temperature')
      return p.length === 1 ? p : null
    })
    assert.equal(temp[0].value, 25.7)
  })

  test('the same message twice is stored once; out-of-order copies are both kept', async () => {
    const id = uniqueName('dup')
    await registerDevice(t, id)
    const dupBefore = await metricValue(t, 'ingest_duplicates_total')
    const m0 = dcTelemetry(id, 0, T0)
    const m1 = dcTelemetry(id, 1, T0 + 10_000)
    const m2 = dcTelemetry(id, 2, T0 + 20_000)
    await publishJson(device, `iot/${id}/telemetry`, m0)
    await publishJson(device, `iot/${id}/telemetry`, m2)
    await publishJson(device, `iot/${id}/telemetry`, m1)
    await publishJson(device, `iot/${id}/telemetry`, m0)
    await publishJson(device, `iot/${id}/telemetry`, m2)
    await waitFor(async () => (await rows(id)) === 3)
    await waitFor(async () => (await metricValue(t, 'ingest_duplicates_total')) - dupBefore >= 2)
    assert.equal((await points(id, 'voltage_dc')).length, 30)
    assert.equal(await rows(id), 3)
  })

  test('a reboot (seq back to 0 with a newer ts) loses nothing', async () => {
    const id = uniqueName('reboot')
    await registerDevice(t, id)
    for (let seq = 0; seq < 4; seq++)
      await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, seq, T0 + seq * 10_000))
    for (let seq = 0; seq < 3; seq++) {
      await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, seq, T0 + 100_000 + seq * 10_000))
    }
    await waitFor(async () => (await rows(id)) === 7, 10000, '7 datagrams')
    // A late copy from the first boot is still recognised as a copy.
    const dupBefore = await metricValue(t, 'ingest_duplicates_total')
    await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, 1, T0 + 10_000))
    await waitFor(async () => (await metricValue(t, 'ingest_duplicates_total')) > dupBefore)
    assert.equal(await rows(id), 7)
  })

  test('a gap raises exactly one sequence_gap alert once its grace period passes', async () => {
    const id = uniqueName('gap')
    await registerDevice(t, id)
    for (const seq of [0, 1, 5, 6])
      await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, seq, T0 + seq * 10_000))
    const alerts = await waitFor(async () => {
      const list = (await t.inject({ url: `/api/devices/${id}/alerts` })).json()
      return list.length > 0 ? list : null
    }, 5000)
    assert.equal(alerts.length, 1)
    assert.equal(alerts[0].alert_type, 'sequence_gap')
    assert.equal(alerts[0].details.missing, 3, JSON.stringify(alerts[0]))
    assert.deepEqual(alerts[0].details.ranges, [{ from: 2, to: 4 }])
    await new Promise((r) => setTimeout(r, 600))
    assert.equal((await t.inject({ url: `/api/devices/${id}/alerts` })).json().length, 1)
    const gaps = await t.app.db.selectFrom('seq_gaps').selectAll().execute()
    assert.ok(gaps.some((g) => Number(g.from_seq) === 2 && Number(g.to_seq) === 4))
  })

  test('a late copy filling a hole within the grace period raises nothing', async () => {
    const id = uniqueName('late')
    await registerDevice(t, id)
    for (const seq of [0, 2, 1])
      await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, seq, T0 + seq * 10_000))
    await waitFor(async () => (await rows(id)) === 3)
    await new Promise((r) => setTimeout(r, 700))
    assert.equal((await t.inject({ url: `/api/devices/${id}/alerts` })).json().length, 0)
  })

  test('a forged topic/payload id, and malformed payloads, are rejected and counted without a crash', async () => {
    const id = uniqueName('forge')
    const other = uniqueName('victim')
    await registerDevice(t, id)
    await registerDevice(t, other)
    const mismatchBefore = await metricValue(t, 'ingest_rejected_total', 'reason="device_mismatch"')
    await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(other, 0, T0))
    await waitFor(
      async () =>
        (await metricValue(t, 'ingest_rejected_total', 'reason="device_mismatch"')) > mismatchBefore,
    )
    const good = dcTelemetry(id, 1, T0)
    const bad: unknown[] = [
      'not json',
      '[]',
      'null',
      '42',
      '"text"',
      {},
      { ...good, v: 3 },
      { ...good, seq: -1 },
      { ...good, seq: 2 ** 32 },
      { ...good, seq: 1.5 },
      { ...good, ts: 'yesterday' },
      { ...good, ts: '2026-02-31T00:00:00Z' },
      { ...good, measurements: [] },
      { ...good, measurements: 'many' },
      { ...good, measurements: [{ ts: good.ts, type: 'voltage_dc', val: '750' }] },
      { ...good, measurements: [{ ts: good.ts, type: 'Voltage DC', val: 750 }] },
      { ...good, measurements: [{ ts: good.ts, type: 'voltage_dc', val: null }] },
      { ...good, measurements: [{ ts: good.ts, type: 'voltage_dc', val: 750, unit: 'V\u0000' }] },
      {
        ...good,
        measurements: Array.from({ length: 201 }, () => ({ ts: good.ts, type: 'voltage_dc', val: 1 })),
      },
      '{"v":2,"device_id":"x","measurements":[{"val":1e999}]}',
      { ...good, device_id: 'a/b' },
      { ...good, ts: '2999-01-01T00:00:00Z' },
      { ...good, __proto__: { polluted: true } },
      `{"v":2,${'"a":{'.repeat(500)}${'}'.repeat(500)}}`,
    ]
    const rejectedBefore = await metricValue(t, 'ingest_rejected_total', 'reason="schema"')
    for (const payload of bad) await publishJson(device, `iot/${id}/telemetry`, payload)
    await publishJson(device, `iot/${id}/telemetry`, good)
    await waitFor(async () => (await rows(id)) === 1, 10000, 'the one good datagram')
    // Counted once its batch is stored, a moment after the good row is visible: waited for too.
    await waitFor(
      async () => (await metricValue(t, 'ingest_rejected_total', 'reason="schema"')) > rejectedBefore,
      10000,
      'the schema rejections counted',
    )
    assert.equal(await rows(other), 0, 'nothing stored for the victim')
    assert.equal((await t.inject({ url: '/healthz' })).statusCode, 200)
  })

  test('hello sets the firmware; status offline (the LWT) marks offline with an alert; back online resolves it', async () => {
    const id = uniqueName('life')
    await registerDevice(t, id)
    await publishJson(device, `iot/${id}/hello`, hello(id, 0, T0, '2.4.1'))
    await waitFor(async () => (await t.inject({ url: `/api/devices/${id}` })).json().fw_version === '2.4.1')
    await publishJson(
      device,
      `iot/${id}/status`,
      { v: 2, device_id: id, ts: new Date(T0 + 1000).toISOString(), status: 'offline' },
      1,
    )
    await waitFor(
      async () => (await t.inject({ url: `/api/devices/${id}` })).json().connection_status === 'offline',
    )
    const alerts = await waitFor(async () => {
      const list = (await t.inject({ url: `/api/devices/${id}/alerts` })).json()
      return list.length > 0 ? list : null
    })
    assert.equal(alerts[0].alert_type, 'device_offline')
    await publishJson(
      device,
      `iot/${id}/status`,
      { v: 2, device_id: id, ts: new Date(T0 + 2000).toISOString(), status: 'online' },
      1,
    )
    await waitFor(
      async () => (await t.inject({ url: `/api/devices/${id}/alerts` })).json()[0].resolved_at !== null,
    )
  })

  test('the liveness timeout marks a silent device offline and raises one alert', async () => {
    const id = uniqueName('silent')
    await registerDevice(t, id)
    await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, 0, T0))
    await waitFor(
      async () => (await t.inject({ url: `/api/devices/${id}` })).json().connection_status === 'online',
    )
    // Its last message is now 61 s old: past 2 × max(10 s, 30 s).
    await t.app.db
      .updateTable('devices')
      .set({ last_seen: new Date(Date.now() - 61_000) })
      .where('device_id', '=', id)
      .execute()
    await waitFor(
      async () => (await t.inject({ url: `/api/devices/${id}` })).json().connection_status === 'offline',
    )
    await new Promise((r) => setTimeout(r, 500))
    const alerts = (await t.inject({ url: `/api/devices/${id}/alerts` })).json()
    assert.equal(alerts.length, 1)
    assert.equal(alerts[0].alert_type, 'device_offline')
    assert.equal(alerts[0].occurrences, 1)
  })

  test('messages of unregistered devices are dropped and counted', async () => {
    const before = await metricValue(t, 'ingest_rejected_total', 'reason="unknown_device"')
    const id = uniqueName('ghost')
    await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, 0, T0))
    await waitFor(
      async () => (await metricValue(t, 'ingest_rejected_total', 'reason="unknown_device"')) > before,
    )
    assert.equal((await t.inject({ url: `/api/devices/${id}` })).statusCode, 404)
  })

  test('a batch that fails to store is retried, readiness turns 503, and nothing is lost', async () => {
    const id = uniqueName('retry')
    await registerDevice(t, id)
    await sql`alter table telemetry rename to telemetry_away`.execute(t.app.db)
    try {
      await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, 0, T0))
      const ready = await waitFor(
        async () => {
          const res = await t.inject({ url: '/readyz' })
          return res.statusCode === 503 && /storing failed/.test(res.json().checks.ingest) ? res.json() : null
        },
        10000,
        'readiness 503 naming the ingest',
      )
      assert.equal(ready.status, 'not ready')
      assert.ok((await metricValue(t, 'ingest_store_errors_total')) > 0)
    } finally {
      await sql`alter table telemetry_away rename to telemetry`.execute(t.app.db)
    }
    await waitFor(async () => (await rows(id)) === 1, 15000, 'the retried batch')
    await waitFor(async () => (await t.inject({ url: '/readyz' })).statusCode === 200, 10000, 'ready again')
  })

  test('ingest metrics are exported', async () => {
    const text = (await t.inject({ url: '/metrics' })).body
    for (const name of [
      'ingest_messages_total',
      'ingest_duplicates_total',
      'ingest_gaps_total',
      'ingest_rejected_total',
      'ingest_flush_seconds',
      'ingest_batch_size',
      'ingest_inflight',
      'devices_online',
      'mqtt_connected',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name)
    }
    assert.ok((await metricValue(t, 'ingest_gaps_total')) >= 3)
  })
})
