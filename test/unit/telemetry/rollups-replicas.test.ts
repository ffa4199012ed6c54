import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { after, before, test } from 'node:test'
import type { Datagram } from '../../../src/modules/telemetry/datagram.ts'
import { PostgresTelemetryStore } from '../../../src/modules/telemetry/postgres-store.ts'
import { refreshRollups } from '../../../src/modules/telemetry/rollups.ts'
import { build, type TestApp } from '../../helpers/build.ts'
import { registerDevice } from '../../helpers/device.ts'
import { createSchema, realDatabaseUrl, uniqueName } from '../../helpers/env.ts'
import { seeded, shuffled } from '../../helpers/random.ts'

const HOUR = 3_600_000
/** Fixed seeds, plus one random seed (printed on failure). */
const SEEDS = [1, 2, randomInt(1, 2 ** 31)]
const FNS = ['count', 'min', 'max', 'mean', 'sum'] as const
type Fn = (typeof FNS)[number]

const skip = realDatabaseUrl ? false : 'replicas share one PostgreSQL: set TEST_DATABASE_URL to run this test'

let replicas: TestApp[] = []
let schema: { url: string; drop: () => Promise<void> } | undefined
before(async () => {
  if (!realDatabaseUrl) return
  schema = await createSchema(realDatabaseUrl)
  // The first build migrates the schema, the second starts on it: two replicas of one database.
  replicas.push(await build({ DATABASE_URL: schema.url }))
  replicas.push(await build({ DATABASE_URL: schema.url }))
})
after(async () => {
  for (const r of replicas) await r.close()
  replicas = []
  await schema?.drop()
})

/** 3 h of 10-sample datagrams at 1 Hz of one device, some samples null, in a random order. */
function datagramsOf(devicePk: number, start: number, random: () => number): Datagram[] {
  const out: Datagram[] = []
  for (let seq = 0; seq < 3 * 360; seq++) {
    const t0 = start + seq * 10_000
    const times = Array.from({ length: 10 }, (_, i) => t0 + i * 1000)
    const v = times.map(() => (random() < 0.05 ? null : Math.round((700 + random() * 100) * 100) / 100))
    out.push({
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
  return shuffled(out, random)
}

/** The windows of `every` computed here from raw points (GET /metrics without `every`). */
function aggregate(points: { time: string; value: number }[], every: number, fn: Fn) {
  const windows = new Map<number, number[]>()
  for (const p of points) {
    const w = Math.floor(Date.parse(p.time) / every) * every
    windows.set(w, [...(windows.get(w) ?? []), p.value])
  }
  return [...windows].map(([time, vs]) => {
    const sum = vs.reduce((s, v) => s + v, 0)
    const value = { count: vs.length, min: Math.min(...vs), max: Math.max(...vs), sum, mean: sum / vs.length }
    return { time: new Date(time).toISOString(), value: value[fn] }
  })
}

for (const seed of SEEDS) {
  test(`two replicas on one PostgreSQL storing late data and copies of the same device-hours: rollups equal the raw answer (seed ${seed})`, {
    skip,
  }, async () => {
    const [a, b] = replicas as [TestApp, TestApp]
    const random = seeded(seed)
    const deviceId = uniqueName('rep')
    const device = await registerDevice(a, deviceId)
    const start = Math.floor(Date.now() / HOUR) * HOUR - 5 * HOUR
    const all = datagramsOf(device.id, start, random)
    const stores = [new PostgresTelemetryStore(a.app.db), new PostgresTelemetryStore(b.app.db)]
    // Chunks go to one replica or to both (a copy); both refresh while the other writes.
    for (let i = 0; i < all.length; ) {
      const chunk = all.slice(i, i + 5 + Math.floor(random() * 20))
      i += chunk.length
      const to = random() < 0.3 ? [0, 1] : [random() < 0.5 ? 0 : 1]
      await Promise.all([
        ...to.map((k) => stores[k]?.write(chunk)),
        refreshRollups(a.app.db),
        refreshRollups(b.app.db),
      ])
    }
    // Late copies of the first tenth, on both replicas at once.
    const late = all.slice(0, 108)
    await Promise.all([stores[0]?.write(late), stores[1]?.write(late), refreshRollups(a.app.db)])

    const window = `start=${new Date(start).toISOString()}&stop=${new Date(start + 3 * HOUR).toISOString()}`
    const url = `/api/devices/${deviceId}/metrics?metric=voltage_dc&${window}`
    const raw = await a.inject(`${url}&limit=100000`)
    assert.equal(raw.statusCode, 200)
    const points = raw.json() as { time: string; value: number }[]
    const expectedCount = all.reduce(
      (n, d) => n + (d.values.voltage_dc?.filter((v) => v !== null).length ?? 0),
      0,
    )
    assert.equal(points.length, expectedCount, 'every sample stored once')
    for (const [every, text] of [
      [60_000, '1m'],
      [HOUR, '1h'],
    ] as const) {
      for (const fn of FNS) {
        const want = aggregate(points, every, fn)
        for (const [name, r] of [
          ['a', a],
          ['b', b],
        ] as const) {
          const got = (await r.inject(`${url}&every=${text}&fn=${fn}`)).json() as {
            time: string
            value: number
          }[]
          assert.equal(got.length, want.length, `${fn} every ${text} on ${name}: windows (seed ${seed})`)
          got.forEach((p, i) => {
            const w = want[i] as { time: string; value: number }
            assert.equal(p.time, w.time)
            const close = Math.abs(p.value - w.value) <= 1e-9 * Math.abs(w.value)
            if (fn === 'mean' || fn === 'sum') assert.ok(close, `${fn} ${p.value} vs ${w.value} on ${name}`)
            else assert.equal(p.value, w.value, `${fn} every ${text} at ${w.time} on ${name} (seed ${seed})`)
          })
        }
      }
    }
  })
}
