import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import pg from 'pg'
import { HOUR_MS } from '../../../src/modules/telemetry/compact-rows.ts'
import { compactUnit, rawUnits } from '../../../src/modules/telemetry/compaction.ts'
import { CompactionJob } from '../../../src/modules/telemetry/compaction-job.ts'
import { integrateEnergy } from '../../../src/modules/telemetry/energy-integrator.ts'
import { PostgresTelemetryStore } from '../../../src/modules/telemetry/postgres-store.ts'
import { build, type TestApp } from '../../helpers/build.ts'
import {
  compactionDatagrams,
  dayPartitions,
  lateAndCopies,
  readAll as readAllOf,
  recomputeRollups,
  snapshot,
} from '../../helpers/compaction.ts'
import { registerDevice } from '../../helpers/device.ts'
import { realDatabaseUrl, uniqueName } from '../../helpers/env.ts'
import { retentionJobOf } from '../../helpers/retention.ts'

const DAY = 86_400_000
/** Fixed seeds (903184713: copies only, no late datagram), plus one random seed (printed in the test name). */
const SEEDS = [1, 2, 3, 903184713, randomInt(1, 2 ** 31)]

let t: TestApp
before(async () => {
  t = await build()
  await dayPartitions(t.app.db, [3, 2])
})
after(() => t.close())

const readAll = (store: PostgresTelemetryStore, devicePk: number, start: number, stop: number) =>
  readAllOf(store, devicePk, start, stop, integrateEnergy)

async function compactDevice(devicePk: number, store: PostgresTelemetryStore) {
  const units = (await rawUnits(t.app.db, 0, Date.now())).filter((u) => u.devicePk === devicePk)
  for (const unit of units) assert.notEqual(await compactUnit(t.app.db, store.records, unit), 'skipped')
  return units.length
}

for (const seed of SEEDS) {
  test(`compacted rows read back as the raw ones, late data and copies included (seed ${seed})`, async () => {
    const store = new PostgresTelemetryStore(t.app.db, DAY)
    const ref = (await registerDevice(t, uniqueName('cref'))).id
    const sub = (await registerDevice(t, uniqueName('csub'))).id
    const start = Math.floor(Date.now() / DAY) * DAY - 3 * DAY + 50 * 60_000
    const stop = start + 4 * HOUR_MS
    const data = compactionDatagrams(seed, start)
    for (const devicePk of [ref, sub]) await store.write(data.map((d) => ({ ...d, devicePk })))
    const want = () => readAll(store, ref, start, stop)

    assert.ok((await compactDevice(sub, store)) >= 3)
    await recomputeRollups(t.app.db, sub)
    const { rows } = await sql<{ raw: number }>`select count(*)::int as raw from telemetry
      where device_pk = ${sub} and seq >= 0 and voltage_dc is not null`.execute(t.app.db)
    assert.equal(rows[0]?.raw, 0, 'no raw samples left')
    const { rows: left } = await sql<{ n: number }>`select count(*)::int as n from telemetry
      where device_pk = ${sub} and seq >= 0`.execute(t.app.db)
    assert.equal(left[0]?.n, 0, 'no raw rows left: their keys are in telemetry_compacted_keys')
    assert.deepStrictEqual(await readAll(store, sub, start, stop), await want(), 'compacted')

    // Late: new datagrams into compacted hours, and copies of compacted ones (stored once).
    const { late, copies } = lateAndCopies(seed, start, data)
    for (const devicePk of [ref, sub])
      await store.write([...late, ...copies].map((d) => ({ ...d, devicePk })))
    const { rows: marks } = await sql<{ n: number }>`select count(*)::int as n from telemetry_compaction_marks
      where device_pk = ${sub}`.execute(t.app.db)
    assert.ok((marks[0]?.n ?? 0) > 0, 'late units are marked for the job')
    assert.deepStrictEqual(await readAll(store, sub, start, stop), await want(), 'late, before merging')

    // Copies alone store nothing raw (seed 903184713 drew no late datagram): nothing to merge then.
    assert.equal((await compactDevice(sub, store)) > 0, late.length > 0, 'late units merged')
    await recomputeRollups(t.app.db, sub)
    assert.deepStrictEqual(await readAll(store, sub, start, stop), await want(), 'late, merged')
    const before = await snapshot(t.app.db, sub)
    assert.equal(await compactDevice(sub, store), 0, 'nothing left to compact')
    assert.deepStrictEqual(await snapshot(t.app.db, sub), before, 'compacting again changes nothing')
  })
}

test('the job: one replica at a time, restartable, idempotent; retention still drops compacted days', async () => {
  const store = new PostgresTelemetryStore(t.app.db, DAY)
  const devicePk = (await registerDevice(t, uniqueName('cjob'))).id
  const start = Math.floor(Date.now() / DAY) * DAY - 2 * DAY + 3 * HOUR_MS
  await store.write(compactionDatagrams(9, start).map((d) => ({ ...d, devicePk })))
  const want = await readAll(store, devicePk, start, start + 4 * HOUR_MS)
  const job = () => new CompactionJob(t.app.db, store.records, DAY, 'test', t.app.log)
  const [a, b] = await Promise.all([job().run(), job().run()])
  // On PGlite (one connection) the two runs take turns; on PostgreSQL one finds the lock taken.
  const runs = [a, b].filter((r) => r !== 'busy')
  assert.ok(
    runs.some((r) => r.compacted >= 3),
    JSON.stringify([a, b]),
  )
  await recomputeRollups(t.app.db, devicePk)
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

  const retention = retentionJobOf(t)
  await retention.run(start + 91 * DAY)
  const { rows } = await sql<{
    n: number
  }>`select count(*)::int as n from telemetry where device_pk = ${devicePk}`.execute(t.app.db)
  assert.equal(rows[0]?.n, 0, 'compact rows expire with their day')
  const { rows: keys } = await sql<{ n: number }>`select count(*)::int as n from telemetry_compacted_keys
    where device_pk = ${devicePk}`.execute(t.app.db)
  assert.equal(keys[0]?.n, 0, 'and so do the keys of the compacted datagrams')
})
