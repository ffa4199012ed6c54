import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import type { Datagram } from '../../../src/modules/telemetry/datagram.ts'
import { PostgresTelemetryStore } from '../../../src/modules/telemetry/postgres-store.ts'
import { refreshRollups, rollupFor, wholeWindows } from '../../../src/modules/telemetry/rollups.ts'
import type { AggregateFn } from '../../../src/modules/telemetry/store.ts'
import { build, type TestApp } from '../../helpers/build.ts'
import { registerDevice } from '../../helpers/device.ts'
import { uniqueName } from '../../helpers/env.ts'
import { seeded } from '../../helpers/random.ts'

const HOUR = 3_600_000
/** Fixed seeds, plus one random seed (printed on failure). */
const SEEDS = [1, 2, 3, randomInt(1, 2 ** 31)]

let t: TestApp
before(async () => {
  t = await build()
})
after(() => t.close())

/** 3 h of 10-sample datagrams (1 Hz) with some null samples; shuffled, part of them sent twice. */
function fleetOf(devicePk: number, seed: number, start: number) {
  const random = seeded(seed)
  const datagrams: Datagram[] = []
  for (let seq = 0; seq < 3 * 360; seq++) {
    const t0 = start + seq * 10_000
    const times = Array.from({ length: 10 }, (_, i) => t0 + i * 1000)
    const v = times.map(() => (random() < 0.05 ? null : 700 + random() * 100))
    datagrams.push({
      devicePk,
      deviceId: 'x',
      seq,
      t0,
      times,
      values: { voltage_dc: v },
      other: null,
      outOfRange: [],
    })
  }
  for (let i = datagrams.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[datagrams[i], datagrams[j]] = [datagrams[j] as Datagram, datagrams[i] as Datagram]
  }
  return datagrams
}

function expected(datagrams: Datagram[], every: number, fn: AggregateFn, from = -Infinity, to = Infinity) {
  const windows = new Map<number, number[]>()
  for (const d of datagrams)
    d.times.forEach((time, i) => {
      const v = d.values.voltage_dc?.[i]
      if (v === null || v === undefined || time < from || time >= to) return
      const w = Math.floor(time / every) * every
      windows.set(w, [...(windows.get(w) ?? []), v])
    })
  return [...windows.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([time, vs]) => {
      const sum = vs.reduce((s, v) => s + v, 0)
      const value = {
        min: Math.min(...vs),
        max: Math.max(...vs),
        count: vs.length,
        sum,
        mean: sum / vs.length,
      }[fn as 'min']
      return { time, value }
    })
}

for (const seed of SEEDS) {
  test(`rollups answer /metrics windows as the raw samples do, with late data and copies (seed ${seed})`, async () => {
    const device = await registerDevice(t, uniqueName('roll'))
    const store = new PostgresTelemetryStore(t.app.db)
    const start = Math.floor(Date.now() / HOUR) * HOUR - 5 * HOUR
    const all = fleetOf(device.id, seed, start)
    // Half, then rollups computed, then the rest (late) and a quarter again (copies).
    await store.write(all.slice(0, 540))
    while ((await refreshRollups(t.app.db)) > 0) {}
    await store.write(all.slice(540))
    await store.write(all.slice(0, 270))
    for (const every of [60_000, 15 * 60_000, HOUR]) {
      for (const fn of ['count', 'min', 'max', 'mean', 'sum'] as AggregateFn[]) {
        const q = {
          devicePk: device.id,
          metric: 'voltage_dc',
          start,
          stop: start + 3 * HOUR,
          everyMs: every,
          fn,
          limit: 10_000,
        }
        assert.equal(rollupFor(q), every / 1000)
        const got = await store.query(q)
        const want = expected(all, every, fn)
        assert.equal(got.length, want.length, `${fn} every ${every}: windows (seed ${seed})`)
        got.forEach((p, i) => {
          const w = want[i] as { time: number; value: number }
          assert.equal(p.time, w.time)
          if (fn === 'mean' || fn === 'sum')
            assert.ok(
              Math.abs(p.value - w.value) <= 1e-9 * Math.abs(w.value),
              `${fn} ${p.value} vs ${w.value}`,
            )
          else assert.equal(p.value, w.value, `${fn} every ${every} at ${w.time} (seed ${seed})`)
        })
      }
    }
  })
}

test('a range not on window boundaries: whole windows from the rollups, the first and last from the raw samples', async () => {
  const device = await registerDevice(t, uniqueName('roll'))
  const store = new PostgresTelemetryStore(t.app.db)
  const start = Math.floor(Date.now() / HOUR) * HOUR - 5 * HOUR
  const all = fleetOf(device.id, 9, start)
  await store.write(all)
  const from = start + 17 * 60_000 + 37_123 // mid-window, as start=-24h is
  const to = start + 2 * HOUR + 41 * 60_000 + 5_000
  for (const every of [60_000, 15 * 60_000, HOUR])
    for (const fn of ['count', 'min', 'max', 'mean', 'sum'] as AggregateFn[]) {
      const q = {
        devicePk: device.id,
        metric: 'voltage_dc',
        start: from,
        stop: to,
        everyMs: every,
        fn,
        limit: 10_000,
      }
      assert.equal(rollupFor(q), undefined)
      assert.ok(wholeWindows(q), `every ${every}: whole windows inside`)
      const got = await store.query(q)
      const want = expected(all, every, fn, from, to)
      assert.deepEqual(
        got.map((p) => p.time),
        want.map((w) => w.time),
      )
      got.forEach((p, i) => {
        const w = want[i] as { value: number }
        assert.ok(
          Math.abs(p.value - w.value) <= 1e-9 * Math.abs(w.value),
          `${fn} every ${every}: ${p.value} vs ${w.value}`,
        )
      })
    }
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from telemetry_rollups
    where device_pk = ${device.id}`.execute(t.app.db)
  assert.ok((rows[0]?.n ?? 0) > 0, 'the whole windows came from the rollups')
})

test('a window not on whole minutes, a derived metric or "last" is answered from the raw samples', () => {
  const q = {
    devicePk: 1,
    metric: 'voltage_dc',
    start: 0,
    stop: 2 * HOUR,
    everyMs: HOUR,
    fn: 'mean' as AggregateFn,
    limit: 1,
  }
  assert.equal(rollupFor(q), 3600)
  assert.equal(rollupFor({ ...q, everyMs: 30 * 60_000 }), 900)
  assert.equal(rollupFor({ ...q, everyMs: 5 * 60_000 }), 60)
  assert.equal(rollupFor({ ...q, everyMs: HOUR, start: 15 * 60_000 }), 900)
  assert.equal(rollupFor({ ...q, start: 1000 }), undefined)
  assert.equal(rollupFor({ ...q, everyMs: 30_000 }), undefined)
  assert.equal(rollupFor({ ...q, metric: 'power_active' }), undefined)
  assert.equal(rollupFor({ ...q, fn: 'last' }), undefined)
})
