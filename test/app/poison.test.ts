import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import type { MqttClient } from 'mqtt'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import { connectDevice, dcTelemetry, metricValue, registerDevice, waitFor } from '../helpers/device.ts'
import { uniqueName } from '../helpers/env.ts'

// Issue 16 item 1 / row 9: a record that can never be stored (here: the database refuses its
// device's rows) is found by bisection and quarantined; 1,000 healthy devices are stored as if it
// were not there, and its device stores again once the cause is gone, without a restart.
const FLEET = 1000
const PUBLISHERS = 4

describe('poison isolation among 1,000 healthy devices', () => {
  let t: TestApp
  let clients: MqttClient[]
  const prefix = uniqueName('fleet')
  const poison = uniqueName('poison')
  let poisonPk: number
  const ids = Array.from({ length: FLEET }, (_, i) => `${prefix}-${i}`)

  before(async () => {
    t = await build({ INGEST_FLUSH_MS: '50' })
    await sql`insert into devices (device_id, device_name)
      select ${prefix} || '-' || (i - 1), 'fleet' from generate_series(1, ${FLEET}::int) i`.execute(t.app.db)
    poisonPk = (await registerDevice(t, poison)).id
    clients = await Promise.all(
      Array.from({ length: PUBLISHERS }, (_, i) => connectDevice(brokerUrl(t), uniqueName(`pub${i}`))),
    )
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync()))
    await t.close()
  })

  const storedAt = async (seq: number, deviceIds: string[]) => {
    const r = await sql<{ n: number }>`
      select count(*)::int as n from telemetry t join devices d on d.id = t.device_pk
      where t.seq = ${seq} and d.device_id = any(${deviceIds}::text[])`.execute(t.app.db)
    return Number(r.rows[0]?.n)
  }
  /** Every device of `deviceIds` sends message `seq`; resolves with ms until all healthy ones are stored. */
  const round = async (seq: number, deviceIds: string[]) => {
    const started = performance.now()
    const t0 = Date.now() - 120_000 + seq * 20_000
    await Promise.all(
      deviceIds.map((id, i) =>
        (clients[i % PUBLISHERS] as MqttClient).publishAsync(
          `iot/${id}/telemetry`,
          JSON.stringify(dcTelemetry(id, seq, t0)),
          {
            qos: 1,
          },
        ),
      ),
    )
    await waitFor(async () => (await storedAt(seq, ids)) === FLEET, 30_000, `round ${seq} stored`)
    return Math.round(performance.now() - started)
  }

  test('healthy devices are stored; the poison is quarantined, alerted, listed; its device recovers', async (ctx) => {
    const baseline = await round(0, ids)
    // The database refuses the poison device's rows from now on (a cause of its own).
    await sql`alter table telemetry add constraint poison_device check (device_pk <> ${sql.lit(poisonPk)}) not valid`.execute(
      t.app.db,
    )
    const mixed = [...ids.slice(0, FLEET / 2), poison, ...ids.slice(FLEET / 2)]
    const withPoison = await round(1, mixed)
    await waitFor(async () => (await metricValue(t, 'ingest_quarantined_total')) >= 1, 10_000, 'quarantine')
    // Once quarantined, the device is stored apart: the next round costs the fleet nothing.
    const afterPoison = await round(2, mixed)
    await waitFor(
      async () => (await metricValue(t, 'ingest_quarantined_total')) >= 2,
      10_000,
      'second quarantine',
    )
    const errors = await metricValue(t, 'ingest_store_errors_total')
    ctx.diagnostic(
      `${FLEET} healthy devices, all messages stored: ${baseline} ms without poison, ${withPoison} ms with it (first time, bisection), ${afterPoison} ms after (stored apart); failed store attempts ${errors}`,
    )

    const listed = await t.inject({ url: `/api/ingest/quarantine?device_id=${poison}` })
    assert.equal(listed.statusCode, 200)
    const body = listed.json()
    assert.equal(body.items.length, 2)
    assert.equal(body.items[0].topic, `iot/${poison}/telemetry`)
    assert.match(body.items[0].error, /poison_device/)
    assert.equal(JSON.parse(Buffer.from(body.items[0].payload_base64, 'base64').toString()).seq, 2)
    const alerts = (await t.inject({ url: `/api/devices/${poison}/alerts` })).json()
    assert.ok(alerts.some((a: { alert_type: string }) => a.alert_type === 'ingest_quarantined'))
    assert.equal((await t.inject({ url: '/readyz' })).statusCode, 200)

    // The cause goes away: the device's next message is stored, no restart.
    await sql`alter table telemetry drop constraint poison_device`.execute(t.app.db)
    await round(3, mixed)
    await waitFor(async () => (await storedAt(3, [poison])) === 1, 10_000, 'poison device stores again')
    assert.equal(await storedAt(1, [poison]), 0)
    assert.equal(await metricValue(t, 'ingest_quarantined_total'), 2)
  })
})
