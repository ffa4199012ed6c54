import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { MqttClient } from 'mqtt'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import { connectDevice, metricValue, publishJson, registerDevice, waitFor } from '../helpers/device.ts'
import { uniqueName } from '../helpers/env.ts'

/** Datagrams of 10 one-second samples of constant V and I covering [from, to] inclusive. */
function dcDatagrams(id: string, firstSeq: number, from: number, to: number, volts: number, amps: number) {
  const out = []
  let seq = firstSeq
  for (let t = from; t <= to; t += 10_000) {
    const measurements = []
    for (let s = t; s < t + 10_000 && s <= to; s += 1000) {
      const ts = new Date(s).toISOString()
      measurements.push({ ts, type: 'voltage_dc', val: volts }, { ts, type: 'current_dc', val: amps })
    }
    out.push({
      v: 2,
      device_id: id,
      ts: new Date(t + 10_000).toISOString(),
      seq: seq++,
      msg_type: 'telemetry',
      measurements,
    })
  }
  return out
}

const HOUR = 3_600_000

describe('energy through the whole pipeline', () => {
  let t: TestApp
  let meter: MqttClient
  // A whole UTC hour a day ago, so the windows are aligned and complete.
  const H0 = Math.floor((Date.now() - 86_400_000) / HOUR) * HOUR

  before(async () => {
    t = await build({ INGEST_FLUSH_MS: '50' })
    meter = await connectDevice(brokerUrl(t), uniqueName('meter'))
  })
  after(async () => {
    await meter.endAsync()
    await t.close()
  })

  const energy = async (id: string, interval = '1h') =>
    (
      await t.inject({
        url: `/api/devices/${id}/energy?start=${new Date(H0).toISOString()}&stop=${new Date(H0 + HOUR).toISOString()}&interval=${interval}`,
      })
    ).json()

  const send = async (id: string, datagrams: unknown[]) => {
    const before = await metricValue(t, 'ingest_messages_total', 'type="telemetry"')
    for (const d of datagrams) await publishJson(meter, `iot/${id}/telemetry`, d)
    return before
  }
  const stored = async (id: string, samples: number) =>
    waitFor(
      async () =>
        (
          await t.inject({
            url: `/api/devices/${id}/metrics?metric=voltage_dc&start=${new Date(H0 - 60_000).toISOString()}&stop=${new Date(H0 + HOUR + 60_000).toISOString()}&limit=100000`,
          })
        ).json().length === samples,
      30000,
      `${samples} samples`,
    )

  test('750 V × 300 A for one hour is 225 kWh of traction energy with full coverage', async () => {
    const id = uniqueName('dc')
    await registerDevice(t, id)
    const datagrams = dcDatagrams(id, 0, H0, H0 + HOUR, 750, 300)
    await send(id, datagrams)
    await stored(id, 3601)
    const e = await energy(id)
    assert.ok(Math.abs(e.totals.import_kwh - 225) / 225 < 0.001, String(e.totals.import_kwh))
    assert.equal(e.totals.export_kwh, 0)
    assert.ok(Math.abs(e.totals.net_kwh - 225) < 0.225)
    assert.ok(e.totals.coverage > 0.999)
    assert.equal(e.rows.length, 1)
    const quarter = await energy(id, '15m')
    assert.equal(quarter.rows.length, 4)
    for (const r of quarter.rows) assert.ok(Math.abs(r.import_kwh - 56.25) < 0.06)

    // The same datagrams again, shuffled: nothing changes.
    const shuffled = [...datagrams].sort(() => Math.random() - 0.5).slice(0, 120)
    await send(id, shuffled)
    await waitFor(
      async () => (await metricValue(t, 'ingest_duplicates_total')) >= 120,
      20000,
      'copies dropped',
    )
    const again = await energy(id)
    assert.equal(again.totals.import_kwh, e.totals.import_kwh)
  })

  test('braking with −200 A fills the export register and leaves import untouched', async () => {
    const id = uniqueName('regen')
    await registerDevice(t, id)
    // 30 min motoring at 300 A, then 30 min braking at −200 A (both at 750 V).
    const half = H0 + HOUR / 2
    const motoring = dcDatagrams(id, 0, H0, half - 1000, 750, 300)
    const braking = dcDatagrams(id, motoring.length, half, H0 + HOUR, 750, -200)
    await send(id, [...motoring, ...braking])
    await stored(id, 3601)
    const e = await energy(id)
    assert.ok(Math.abs(e.totals.import_kwh - 112.5) / 112.5 < 0.001, String(e.totals.import_kwh))
    assert.ok(Math.abs(e.totals.export_kwh - 75) / 75 < 0.001, String(e.totals.export_kwh))
    assert.ok(Math.abs(e.totals.net_kwh - 37.5) < 0.2)
  })

  test('a 10-minute data gap contributes nothing and lowers coverage', async () => {
    const id = uniqueName('gap')
    await registerDevice(t, id)
    const first = dcDatagrams(id, 0, H0, H0 + 20 * 60_000, 750, 300)
    const second = dcDatagrams(id, first.length, H0 + 30 * 60_000, H0 + HOUR, 750, 300)
    await send(id, [...first, ...second])
    await stored(id, 1201 + 1801)
    const e = await energy(id)
    // 50 minutes of data: 187.5 kWh; coverage 50/60.
    assert.ok(Math.abs(e.totals.import_kwh - 187.5) / 187.5 < 0.001, String(e.totals.import_kwh))
    assert.ok(Math.abs(e.totals.coverage - 50 / 60) < 0.002, String(e.totals.coverage))
  })

  test('bad windows and intervals are 400s naming the parameter', async () => {
    const id = uniqueName('bad')
    await registerDevice(t, id)
    for (const [query, field] of [
      ['interval=7m', /interval/],
      ['start=yesterday', /start/],
      ['start=now()&stop=-1h', /before/],
    ] as const) {
      const res = await t.inject({ url: `/api/devices/${id}/energy?${query}` })
      assert.equal(res.statusCode, 400, query)
      assert.match(res.json().error, field)
    }
    assert.equal((await t.inject({ url: '/api/devices/nobody/energy' })).statusCode, 404)
  })
})
