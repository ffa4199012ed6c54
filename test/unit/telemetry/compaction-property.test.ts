import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import pg from 'pg'
import { FsArchiveStore, RawArchive } from '../../../src/modules/archive/index.ts'
import { createRetentionModule } from '../../../src/modules/retention/index.ts'
import { HOUR_MS } from '../../../src/modules/telemetry/compact-rows.ts'
import { compactUnit, rawUnits } from '../../../src/modules/telemetry/compaction.ts'
import { CompactionJob } from '../../../src/modules/telemetry/compaction-job.ts'
import type { Datagram } from '../../../src/modules/telemetry/datagram.ts'
import { integrateEnergy } from '../../../src/modules/telemetry/energy-integrator.ts'
import { PostgresTelemetryStore } from '../../../src/modules/telemetry/postgres-store.ts'
import type { AggregateFn, SeriesQuery } from '../../../src/modules/telemetry/store.ts'
import { build, type TestApp } from '../../helpers/build.ts'
import { registerDevice } from '../../helpers/device.ts'
import { realDatabaseUrl, uniqueName } from '../../helpers/env.ts'
import { seeded } from '../../helpers/random.ts'

const DAY = 86_400_000
/** Fixed seeds (903184713: copies only, no late datagram), plus one random seed (printed in the test name). */
const SEEDS = [1, 2, 3, 903184713, randomInt(1, 2 ** 31)]
const ODD = [-0, 5e-324, 1.7976931348623157e308, -1e-300, 0.1 + 0.2]

let t: TestApp
before(async () => {
  t = await build()
  // The app's retention job runs 1 s after start, moving rows out of the default partition: wait
  // for it (a query racing a partition being attached can miss the rows moved), then give the
  // days the tests write (3 and 2 days ago) partitions of their own, as production has.
  for (let i = 0; i < 100; i++) {
    const { rows } = await sql`select 1 from maintenance_runs where job = 'retention'`.execute(t.app.db)
    if (rows.length > 0) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  for (const days of [3, 2]) {
    const day = Math.floor(Date.now() / DAY) * DAY - days * DAY
    const name = `telemetry_p${new Date(day).toISOString().slice(0, 10).replace(/-/g, '')}`
    await sql`create table if not exists ${sql.id(name)} partition of telemetry
      for values from (${sql.lit(new Date(day).toISOString())}) to (${sql.lit(new Date(day + DAY).toISOString())})`.execute(
      t.app.db,
    )
  }
})
after(() => t.close())

/** 3 h of datagrams (DC, AC with Q and phase angle, temperature only), irregular ones, nulls, odd values. */
function datagramsOf(seed: number, start: number, firstSeq = 0): Omit<Datagram, 'devicePk'>[] {
  const random = seeded(seed)
  const value = (base: number) =>
    random() < 0.05
      ? null
      : random() < 0.02
        ? (ODD[Math.floor(random() * ODD.length)] as number)
        : base + random()
  const out: Omit<Datagram, 'devicePk'>[] = []
  let t0 = start
  for (let seq = firstSeq; t0 < start + 3 * HOUR_MS; seq++) {
    const long = random() < 0.01 // 59 samples a minute apart: spills over two hours
    const n = long ? 59 : 1 + Math.floor(random() * 20)
    const step = long ? 60_000 : 1000
    const times = Array.from(
      { length: n },
      (_, i) => t0 + i * step + (random() < 0.1 ? 1 + Math.floor(random() * 900) : 0),
    )
    const kind = random()
    const column = (base: number) => times.map(() => value(base))
    const values: Datagram['values'] =
      kind < 0.5
        ? { voltage_dc: column(750), current_dc: column(-200) }
        : kind < 0.8
          ? { voltage_ac: column(15_000), current_ac: column(100), pf: column(-0.5) }
          : { temperature: column(30) }
    const other =
      kind >= 0.5 && kind < 0.8 && random() < 0.5
        ? { power_reactive: column(100), phase_angle: column(20) }
        : null
    out.push({ deviceId: 'x', seq, t0, times, values, other, outOfRange: [] })
    t0 = (times.at(-1) as number) + step
  }
  return out
}

const METRICS = [
  'voltage_dc',
  'current_dc',
  'voltage_ac',
  'pf',
  'temperature',
  'power_reactive',
  'phase_angle',
  'power_active',
  'power_apparent',
]
const FNS: AggregateFn[] = ['mean', 'min', 'max', 'sum', 'count', 'last']

/** Everything a reader sees of a device in [start, stop): /metrics windows, power samples, energy. */
async function readAll(store: PostgresTelemetryStore, devicePk: number, start: number, stop: number) {
  const random = seeded(7) // the same windows for both devices
  const out: unknown[] = []
  const q = (extra: Partial<SeriesQuery>): SeriesQuery => ({
    devicePk,
    metric: 'voltage_dc',
    start,
    stop,
    fn: 'mean',
    limit: 100_000,
    ...extra,
  })
  for (const metric of METRICS) {
    out.push(await store.query(q({ metric })))
    out.push((await store.query(q({ metric, limit: 1 })))[0]) // first
    const a = start + Math.floor(random() * HOUR_MS)
    const b = a + Math.floor(random() * 2 * HOUR_MS)
    out.push(await store.query(q({ metric, start: a, stop: b })))
    for (const fn of FNS)
      out.push(await store.query(q({ metric, fn, everyMs: 7000 + Math.floor(random() * 600_000) })))
  }
  // Whole minutes and hours: answered from the rollups.
  for (const fn of ['mean', 'min', 'max', 'sum', 'count'] as AggregateFn[])
    for (const everyMs of [60_000, HOUR_MS])
      out.push(await store.query(q({ fn, everyMs, metric: 'current_dc' })))
  const power = await store.powerSamples(devicePk, start, stop)
  out.push(power)
  out.push(integrateEnergy(power, { intervalMs: 300_000, maxGapMs: 5000, cadenceMs: 1000 }))
  return out
}

/** Rows of the device's compacted hours go; marks of every hour: rollups recomputed from what is stored now. */
async function recomputeRollups(devicePk: number) {
  await sql`delete from telemetry_rollups where device_pk = ${devicePk}`.execute(t.app.db)
  await sql`insert into rollup_dirty (device_pk, hour)
    select distinct ${devicePk}::int, date_trunc('hour', to_timestamp(floor(extract(epoch from t0) / 3600) * 3600)) from telemetry
    where device_pk = ${devicePk} on conflict do nothing`.execute(t.app.db)
}

async function compactDevice(devicePk: number, store: PostgresTelemetryStore) {
  const units = (await rawUnits(t.app.db, 0, Date.now())).filter((u) => u.devicePk === devicePk)
  for (const unit of units) assert.notEqual(await compactUnit(t.app.db, store.records, unit), 'skipped')
  return units.length
}

const snapshot = async (devicePk: number) =>
  (await sql`select * from telemetry where device_pk = ${devicePk} order by t0, seq`.execute(t.app.db)).rows

for (const seed of SEEDS) {
  test(`compacted rows read back as the raw ones, late data and copies included (seed ${seed})`, async () => {
    const store = new PostgresTelemetryStore(t.app.db, DAY)
    const ref = (await registerDevice(t, uniqueName('cref'))).id
    const sub = (await registerDevice(t, uniqueName('csub'))).id
    const start = Math.floor(Date.now() / DAY) * DAY - 3 * DAY + 50 * 60_000
    const stop = start + 4 * HOUR_MS
    const data = datagramsOf(seed, start)
    for (const devicePk of [ref, sub]) await store.write(data.map((d) => ({ ...d, devicePk })))
    const want = () => readAll(store, ref, start, stop)

    assert.ok((await compactDevice(sub, store)) >= 3)
    await recomputeRollups(sub)
    const { rows } = await sql<{ raw: number }>`select count(*)::int as raw from telemetry
      where device_pk = ${sub} and seq >= 0 and voltage_dc is not null`.execute(t.app.db)
    assert.equal(rows[0]?.raw, 0, 'no raw samples left')
    const { rows: left } = await sql<{ n: number }>`select count(*)::int as n from telemetry
      where device_pk = ${sub} and seq >= 0`.execute(t.app.db)
    assert.equal(left[0]?.n, 0, 'no raw rows left: their keys are in telemetry_compacted_keys')
    assert.deepStrictEqual(await readAll(store, sub, start, stop), await want(), 'compacted')

    // Late: new datagrams into compacted hours, and copies of compacted ones (stored once).
    const random = seeded(seed + 1)
    // (None at a time already taken: the order of two samples of one time is the engine's.)
    const taken = new Set(data.flatMap((d) => d.times))
    const late = datagramsOf(seed + 2, start + 30 * 60_000 + 500, 1_000_000).filter(
      (d) => random() < 0.05 && !d.times.some((time) => taken.has(time)),
    )
    const copies = data.filter(() => random() < 0.1)
    for (const devicePk of [ref, sub])
      await store.write([...late, ...copies].map((d) => ({ ...d, devicePk })))
    const { rows: marks } = await sql<{ n: number }>`select count(*)::int as n from telemetry_compaction_marks
      where device_pk = ${sub}`.execute(t.app.db)
    assert.ok((marks[0]?.n ?? 0) > 0, 'late units are marked for the job')
    assert.deepStrictEqual(await readAll(store, sub, start, stop), await want(), 'late, before merging')

    // Copies alone store nothing raw (seed 903184713 drew no late datagram): nothing to merge then.
    assert.equal((await compactDevice(sub, store)) > 0, late.length > 0, 'late units merged')
    await recomputeRollups(sub)
    assert.deepStrictEqual(await readAll(store, sub, start, stop), await want(), 'late, merged')
    const before = await snapshot(sub)
    assert.equal(await compactDevice(sub, store), 0, 'nothing left to compact')
    assert.deepStrictEqual(await snapshot(sub), before, 'compacting again changes nothing')
  })
}

test('the job: one replica at a time, restartable, idempotent; retention still drops compacted days', async () => {
  const store = new PostgresTelemetryStore(t.app.db, DAY)
  const devicePk = (await registerDevice(t, uniqueName('cjob'))).id
  const start = Math.floor(Date.now() / DAY) * DAY - 2 * DAY + 3 * HOUR_MS
  await store.write(datagramsOf(9, start).map((d) => ({ ...d, devicePk })))
  const want = await readAll(store, devicePk, start, start + 4 * HOUR_MS)
  const job = () => new CompactionJob(t.app.db, store.records, DAY, 'test', t.app.log)
  const [a, b] = await Promise.all([job().run(), job().run()])
  // On PGlite (one connection) the two runs take turns; on PostgreSQL one finds the lock taken.
  const runs = [a, b].filter((r) => r !== 'busy')
  assert.ok(
    runs.some((r) => r.compacted >= 3),
    JSON.stringify([a, b]),
  )
  await recomputeRollups(devicePk)
  assert.deepStrictEqual(await readAll(store, devicePk, start, start + 4 * HOUR_MS), want)
  const again = await job().run()
  assert.ok(again !== 'busy' && again.compacted === 0, JSON.stringify(again))
  if (realDatabaseUrl) {
    // Another replica's session holds the lock: this run is skipped.
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(t.app.db)
    const other = new pg.Client({ connectionString: t.config.DATABASE_URL })
    await other.connect()
    try {
      await other.query('select pg_advisory_lock(hashtext($1))', [
        `${rows[0]?.schema}:iot-meter:telemetry-compaction`,
      ])
      assert.equal(await job().run(), 'busy')
    } finally {
      await other.end()
    }
  }

  const retention = createRetentionModule({
    db: t.app.db,
    archive: new RawArchive(new FsArchiveStore(`${t.config.DATA_DIR}/archive`), t.app.db, 0),
    config: t.config,
    log: t.app.log,
  }).job
  await retention.run(start + 91 * DAY)
  const { rows } = await sql<{
    n: number
  }>`select count(*)::int as n from telemetry where device_pk = ${devicePk}`.execute(t.app.db)
  assert.equal(rows[0]?.n, 0, 'compact rows expire with their day')
  const { rows: keys } = await sql<{ n: number }>`select count(*)::int as n from telemetry_compacted_keys
    where device_pk = ${devicePk}`.execute(t.app.db)
  assert.equal(keys[0]?.n, 0, 'and so do the keys of the compacted datagrams')
})
