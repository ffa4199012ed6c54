import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import type { Datagram } from '../../../src/modules/telemetry/datagram.ts'
import { PostgresTelemetryStore } from '../../../src/modules/telemetry/postgres-store.ts'
import { build, type TestApp } from '../../helpers/build.ts'
import { uniqueName } from '../../helpers/env.ts'
import { seeded } from '../../helpers/random.ts'

const HOUR = 3_600_000
const QUARTER = 900_000

let t: TestApp
const ids: string[] = []
let start = 0
before(async () => {
  t = await build()
  const store = new PostgresTelemetryStore(t.app.db)
  start = Math.floor(Date.now() / HOUR) * HOUR - 4 * HOUR
  const type = uniqueName('fleet-type')
  const prefix = uniqueName('fleet')
  for (let i = 0; i < 5; i++) {
    const id = `${prefix}-${i}`
    const res = await t.inject({
      method: 'POST',
      url: '/api/devices',
      payload: { device_id: id, device_name: id, device_type: i < 4 ? type : 'other' },
    })
    assert.equal(res.statusCode, 201, res.body)
    ids.push(id)
    // 2 h of 1 Hz voltage, device i from minute 7·i on (some start mid-window); the last device none.
    if (i === 4) continue
    const random = seeded(i + 1)
    const datagrams: Datagram[] = []
    for (let seq = 0; seq < 720; seq++) {
      const t0 = start + i * 7 * 60_000 + seq * 10_000
      const times = Array.from({ length: 10 }, (_, k) => t0 + k * 1000)
      const values = { voltage_dc: times.map(() => (random() < 0.05 ? null : 700 + random() * 100)) }
      datagrams.push({
        devicePk: res.json().id,
        deviceId: id,
        seq,
        t0,
        times,
        values,
        other: null,
        outOfRange: [],
      })
    }
    await store.write(datagrams)
  }
})
after(() => t.close())

const fleet = async (query: string, token?: string) =>
  t.inject({
    url: `/api/fleet/metrics?${query}`,
    ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
  })

/** A device's row of the table as the points /metrics would list (windows with a value). */
const pointsOf = (times: string[], values: (number | null)[]) =>
  times.flatMap((time, i) => (values[i] === null ? [] : [{ time, value: values[i] as number }]))

const range = () => `start=${new Date(start).toISOString()}&stop=${new Date(start + 3 * HOUR).toISOString()}`

test('each device gets the windows its own /metrics gives; rollups of 15 minutes answer in one statement', async () => {
  const listed = ids.slice(0, 4).join(',')
  // 12 dirty device-hours: each answer brings some up to date (for at most 500 ms) and counts the rest.
  const pending: number[] = []
  for (let i = 0; i < 50 && pending.at(-1) !== 0; i++)
    pending.push(
      (await fleet(`metric=voltage_dc&every=15m&devices=${listed}&${range()}`)).json().pending_hours,
    )
  assert.equal(pending.at(-1), 0, `pending hours: ${pending}`)
  assert.ok(
    pending.every((n, i) => i === 0 || n < (pending[i - 1] as number)),
    `pending hours: ${pending}`,
  )
  for (const fn of ['mean', 'min', 'max', 'count', 'sum']) {
    const res = await fleet(`metric=voltage_dc&every=15m&fn=${fn}&devices=${listed}&${range()}`)
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json()
    assert.equal(body.pending_hours, 0)
    assert.equal(body.next, null)
    assert.deepEqual(
      body.devices.map((d: { device_id: string }) => d.device_id),
      ids.slice(0, 4),
    )
    for (const device of body.devices) {
      const own = await t.inject({
        url: `/api/devices/${device.device_id}/metrics?metric=voltage_dc&every=15m&fn=${fn}&${range()}`,
      })
      const want = own.json().map((p: { time: string; value: number }) => ({ time: p.time, value: p.value }))
      assert.ok(want.length >= 7, `${device.device_id}: ${want.length} windows`)
      assert.equal(device.values.length, body.times.length)
      const points = pointsOf(body.times, device.values)
      assert.equal(points.length, want.length)
      points.forEach((p, i) => {
        assert.equal(p.time, want[i].time)
        assert.ok(Math.abs(p.value - want[i].value) <= 1e-9 * Math.abs(want[i].value), `${fn} ${p.value}`)
      })
    }
  }
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from telemetry_rollups
    where bucket_s = 900`.execute(t.app.db)
  assert.ok((rows[0]?.n ?? 0) >= 4 * 8, 'quarter-hour rollups stored')
})

test('start and stop are rounded out to whole windows; a device with no data is listed with nulls', async () => {
  const from = new Date(start + 7 * 60_000 + 1234).toISOString()
  const to = new Date(start + HOUR + 60_000).toISOString()
  const res = await fleet(`metric=voltage_dc&every=15m&start=${from}&stop=${to}&devices=${ids.join(',')}`)
  assert.equal(res.statusCode, 200, res.body)
  const body = res.json()
  assert.equal(body.start, new Date(start).toISOString())
  assert.equal(body.stop, new Date(start + HOUR + QUARTER).toISOString())
  const silent = body.devices.find((d: { device_id: string }) => d.device_id.endsWith('-4'))
  assert.equal(body.times.length, 5)
  assert.equal(body.times[1], new Date(start + QUARTER).toISOString())
  assert.deepEqual(silent.values, [null, null, null, null, null])
  const first = body.devices.find((d: { device_id: string }) => d.device_id.endsWith('-0'))
  assert.ok(first.values.every((v: number | null) => typeof v === 'number'))
})

test('pages of devices by id; a type filter; a computed metric answered per device', async () => {
  const seen: string[] = []
  let after = ''
  for (let page = 0; page < 10; page++) {
    const res = await fleet(
      `metric=voltage_dc&every=1h&limit=2&devices=${ids.join(',')}&${range()}${after ? `&after=${after}` : ''}`,
    )
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json()
    assert.ok(body.devices.length <= 2)
    seen.push(...body.devices.map((d: { device_id: string }) => d.device_id))
    if (body.next === null) break
    after = body.next
  }
  assert.deepEqual(seen, ids)
  const type = await t.inject(`/api/devices/${ids[0]}`)
  const typed = await fleet(`metric=voltage_dc&every=1h&type=${type.json().device_type}&${range()}`)
  assert.equal(typed.json().devices.length, 4)
  const power = await fleet(`metric=power_active&every=1h&devices=${ids[0]}&${range()}`)
  assert.equal(power.statusCode, 200, power.body)
})

test('bad queries are 400s naming the parameter; a viewer may read; no token is a 401', async () => {
  const cases: [string, RegExp][] = [
    ['every=15m', /metric/],
    ['metric=voltage_dc', /every/],
    ['metric=voltage_dc&every=0s', /every/],
    ['metric=voltage_dc&every=1s&start=-7d', /windows/],
    ['metric=voltage_dc&every=1h&devices=,', /devices/],
    ['metric=voltage_dc&every=1h&devices=a/b', /devices/],
    ['metric=voltage_dc&every=1h&start=-999999d', /start/],
    ['metric=voltage_dc&every=1h&limit=0', /limit/],
  ]
  for (const [query, message] of cases) {
    const res = await fleet(query)
    assert.equal(res.statusCode, 400, `${query}: ${res.body}`)
    assert.match(res.json().error, message, query)
  }
  const token = await t.inject({ method: 'POST', url: '/api/tokens', payload: { name: 'v', role: 'viewer' } })
  const viewer = await fleet('metric=voltage_dc&every=1h', token.json().token)
  assert.equal(viewer.statusCode, 200, viewer.body)
  const anonymous = await t.app.inject({ url: '/api/fleet/metrics?metric=voltage_dc&every=1h' })
  assert.equal(anonymous.statusCode, 401)
})

test('hours written after the rollups were made are brought up to date before the answer', async () => {
  const res = await t.inject({
    method: 'POST',
    url: '/api/devices',
    payload: { device_id: uniqueName('late'), device_name: 'late' },
  })
  const pk = res.json().id
  const store = new PostgresTelemetryStore(t.app.db)
  const t0 = start + HOUR
  const answer = async () =>
    (await fleet(`metric=voltage_dc&every=1h&fn=count&devices=${res.json().device_id}&${range()}`)).json()
  assert.deepEqual(pointsOf((await answer()).times, (await answer()).devices[0].values), [])
  const times = Array.from({ length: 10 }, (_, k) => t0 + k * 1000)
  const values = { voltage_dc: times.map(() => 750) }
  await store.write([{ devicePk: pk, deviceId: 'x', seq: 1, t0, times, values, other: null, outOfRange: [] }])
  const body = await answer()
  assert.equal(body.pending_hours, 0)
  assert.deepEqual(pointsOf(body.times, body.devices[0].values), [
    { time: new Date(t0).toISOString(), value: 10 },
  ])
})
