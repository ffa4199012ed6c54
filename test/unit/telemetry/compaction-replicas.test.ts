import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Kysely, type KyselyPlugin, type QueryId, RawNode, sql } from 'kysely'
import { HOUR_MS } from '../../../src/modules/telemetry/compact-rows.ts'
import { compactUnit, rawUnits } from '../../../src/modules/telemetry/compaction.ts'
import {
  COMPACTION_JOB,
  CompactionJob,
  type CompactionRun,
} from '../../../src/modules/telemetry/compaction-job.ts'
import type { Datagram } from '../../../src/modules/telemetry/datagram.ts'
import { integrateEnergy } from '../../../src/modules/telemetry/energy-integrator.ts'
import { PostgresTelemetryStore } from '../../../src/modules/telemetry/postgres-store.ts'
import { RecordsInsert } from '../../../src/modules/telemetry/records-insert.ts'
import type { Database } from '../../../src/platform/db/index.ts'
import { build, type TestApp } from '../../helpers/build.ts'
import {
  compactionDatagrams,
  dayPartitions,
  lateAndCopies,
  rawRows,
  readAll,
  recomputeRollups,
  snapshot,
} from '../../helpers/compaction.ts'
import { registerDevice } from '../../helpers/device.ts'
import { createSchema, realDatabaseUrl, uniqueName } from '../../helpers/env.ts'
import { seeded, shuffled } from '../../helpers/random.ts'

// Issue 18: the compaction job on two replicas of one PostgreSQL, while both write late data.
const DAY = 86_400_000
/** Fixed seeds, plus one random seed (printed in the test name). */
const SEEDS = [1, 2, randomInt(1, 2 ** 31)]
const skip = realDatabaseUrl ? false : 'replicas share one PostgreSQL: set TEST_DATABASE_URL to run this test'
/** The apps' own jobs stay off (TELEMETRY_COMPACT_AFTER_H=0): the tests run theirs, with their own stores. */
const JOB_OFF = { TELEMETRY_COMPACT_AFTER_H: '0' }

type Schema = Awaited<ReturnType<typeof createSchema>>

/** Two replicas on a fresh schema; the days the tests write (3 and 2 days ago) have partitions. */
async function twoReplicas(): Promise<{ replicas: [TestApp, TestApp]; schema: Schema }> {
  const schema = await createSchema(realDatabaseUrl as string)
  const a = await build({ ...JOB_OFF, DATABASE_URL: schema.url })
  // Before the second starts: its retention run then finds nothing to move (see dayPartitions).
  await dayPartitions(a.app.db, [3, 2])
  const b = await build({ ...JOB_OFF, DATABASE_URL: schema.url })
  return { replicas: [a, b], schema }
}

/** A reference of its own schema, never compacted: what every reader must see of a compacted device. */
let ref: TestApp
let replicas: [TestApp, TestApp]
let schema: Schema | undefined
before(async () => {
  if (!realDatabaseUrl) return
  ;({ replicas, schema } = await twoReplicas())
  ref = await build(JOB_OFF)
})
after(async () => {
  for (const r of replicas ?? []) await r.close()
  await ref?.close()
  await schema?.drop()
})

const withPk = (data: readonly Omit<Datagram, 'devicePk'>[], devicePk: number) =>
  data.map((d) => ({ ...d, devicePk }))

/** Chunks of 1–`max` datagrams, in order. */
function chunks<T>(items: readonly T[], random: () => number, max: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; ) {
    const n = 1 + Math.floor(random() * max)
    out.push(items.slice(i, i + n))
    i += n
  }
  return out
}

/**
 * Watches one replica's job take and give back its advisory lock, in the queries it sends: held
 * from the answer of pg_try_advisory_lock (after the server granted it) to the sending of
 * pg_advisory_unlock (before the server releases it), so the watched spans lie inside the real
 * ones. `overlaps` gets an entry whenever a replica takes it while the other holds it.
 */
function lockWatch(name: string, holders: Set<string>, overlaps: string[]): KyselyPlugin {
  const locking = new Set<QueryId>()
  const text = (node: unknown) => (RawNode.is(node as RawNode) ? (node as RawNode).sqlFragments.join('') : '')
  return {
    transformQuery({ node, queryId }) {
      if (text(node).includes('pg_try_advisory_lock')) locking.add(queryId)
      if (text(node).includes('pg_advisory_unlock')) holders.delete(name)
      return node
    },
    async transformResult({ result, queryId }) {
      if (locking.delete(queryId) && (result.rows[0] as { locked?: boolean } | undefined)?.locked) {
        if (holders.size > 0) overlaps.push(`${name} took the lock while ${[...holders]} held it`)
        holders.add(name)
      }
      return result
    },
  }
}

/** Units (hours) of the device that hold raw rows. */
const rawUnitsOf = async (db: Kysely<Database>, devicePk: number) =>
  (await rawUnits(db, 0, Date.now())).filter((u) => u.devicePk === devicePk).length

for (const seed of SEEDS) {
  test(`two replicas run the compaction job over and over while both write late datagrams and copies into the hours compacted: every sample read back once (seed ${seed})`, {
    skip,
  }, async () => {
    const [a] = replicas
    const random = seeded(seed + 3)
    const sub = (await registerDevice(a, uniqueName('csub'))).id
    const refPk = (await registerDevice(ref, uniqueName('cref'))).id
    // Each replica's own store, marking late units for the job (as the app's store does).
    const stores = replicas.map((r) => new PostgresTelemetryStore(r.app.db, DAY))
    const refStore = new PostgresTelemetryStore(ref.app.db)
    const start = Math.floor(Date.now() / DAY) * DAY - 3 * DAY + 50 * 60_000
    const stop = start + 4 * HOUR_MS
    const data = compactionDatagrams(seed, start)
    const { late, copies } = lateAndCopies(seed, start, data)
    await refStore.write(withPk([...data, ...late, ...copies], refPk))

    // Half the datagrams are stored before the jobs start (through either replica); the rest,
    // the late ones and the copies arrive while both replicas compact.
    const mixed = shuffled(data, random)
    const half = Math.floor(mixed.length / 2)
    for (const chunk of chunks(mixed.slice(0, half), random, 20))
      await (stores[random() < 0.5 ? 0 : 1] as PostgresTelemetryStore).write(withPk(chunk, sub))
    const queues: Datagram[][][] = [[], []]
    for (const chunk of chunks(shuffled([...mixed.slice(half), ...late, ...copies], random), random, 5)) {
      const to = random() < 0.3 ? [0, 1] : [random() < 0.5 ? 0 : 1] // to both: a copy written concurrently
      for (const k of to) queues[k]?.push(withPk(chunk, sub))
    }

    const holders = new Set<string>()
    const overlaps: string[] = []
    const jobs = replicas.map(
      (r, k) =>
        new CompactionJob(
          r.app.db.withPlugin(lockWatch(`replica ${k}`, holders, overlaps)),
          (stores[k] as PostgresTelemetryStore).records,
          DAY,
          `replica-${k}`,
          r.app.log,
        ),
    )
    const runs: (CompactionRun | 'busy')[][] = [[], []]
    const jitter = seeded(seed + 4) // pauses only: the data drawn above stays the seed's
    let writing = true
    const compacting = async (k: number) => {
      // Until the writers are done and this replica has held the lock at least once.
      while (writing || !runs[k]?.some((r) => r !== 'busy')) {
        runs[k]?.push(await (jobs[k] as CompactionJob).run())
        await sleep(Math.floor(jitter() * 20))
      }
    }
    const writer = async (k: number) => {
      for (const chunk of queues[k] ?? []) {
        await (stores[k] as PostgresTelemetryStore).write(chunk)
        await sleep(Math.floor(jitter() * 20))
      }
    }
    await Promise.all([
      Promise.all([writer(0), writer(1)]).then(() => {
        writing = false
      }),
      compacting(0),
      compacting(1),
    ])
    const summary = JSON.stringify(runs.map((r) => r.map((x) => (x === 'busy' ? x : x.compacted))))
    assert.deepEqual(overlaps, [], 'never two replicas compacting at once')
    assert.ok(
      runs.flat().some((r) => r === 'busy'),
      `a run finding the other replica's lock is told 'busy': ${summary}`,
    )
    assert.ok(
      runs.flat().some((r) => r !== 'busy' && r.compacted > 0),
      `units compacted: ${summary}`,
    )

    // A last run merges what came last: nothing raw, no mark left.
    const last = await (jobs[0] as CompactionJob).run()
    assert.notEqual(last, 'busy')
    assert.equal(await rawRows(a.app.db, sub), 0, 'nothing raw left')
    const { rows: marks } = await sql<{ n: number }>`select count(*)::int as n from telemetry_compaction_marks
      where device_pk = ${sub}`.execute(a.app.db)
    assert.equal(marks[0]?.n, 0, 'no late unit left marked')
    const { rows: record } = await sql<{
      replica: string
      ok: boolean
    }>`select replica, ok from maintenance_runs
      where job = ${COMPACTION_JOB}`.execute(a.app.db)
    assert.deepEqual(record, [{ replica: 'replica-0', ok: true }], 'the last run is recorded')

    // Every reader, on either replica, sees what the reference (never compacted) shows.
    const want = await readAll(refStore, refPk, start, stop, integrateEnergy)
    for (const k of [0, 1]) {
      const got = await readAll(stores[k] as PostgresTelemetryStore, sub, start, stop, integrateEnergy)
      assert.deepStrictEqual(got, want, `read through replica ${k}, rollups as they were refreshed`)
    }
    await recomputeRollups(a.app.db, sub)
    const got = await readAll(stores[1] as PostgresTelemetryStore, sub, start, stop, integrateEnergy)
    assert.deepStrictEqual(got, want, 'rollups recomputed from the compact rows')

    // A further run, on either replica, changes nothing.
    const before = await snapshot(a.app.db, sub)
    const again = await (jobs[1] as CompactionJob).run()
    assert.ok(again !== 'busy' && again.compacted === 0 && again.late_units === 0, JSON.stringify(again))
    assert.deepStrictEqual(await snapshot(a.app.db, sub), before, 'a further run changes nothing')
    assert.equal(await rawUnitsOf(a.app.db, sub), 0)
  })
}

/** The job's row writer, stopped at its `at`-th unit (inside the unit's transaction) until `pause` resolves. */
class PausingRecords extends RecordsInsert {
  private units = 0

  constructor(
    db: Kysely<Database>,
    private readonly at: number,
    private readonly pause: (conn: Kysely<Database>) => Promise<void>,
  ) {
    super(db)
  }

  override async write(datagrams: readonly Datagram[], db?: Kysely<Database>): Promise<void> {
    if (db && ++this.units === this.at) await this.pause(db)
    return super.write(datagrams, db)
  }
}

test('a compaction run killed in the middle of a unit (its connection terminated), then late data, then runs on both replicas: the rows of one uninterrupted compaction', {
  skip,
}, async () => {
  const {
    replicas: [a, b],
    schema: own,
  } = await twoReplicas()
  try {
    const start = Math.floor(Date.now() / DAY) * DAY - 3 * DAY + 50 * 60_000
    const stop = start + 4 * HOUR_MS
    const devices = [11, 12, 13].map((seed) => {
      const data = compactionDatagrams(seed, start)
      return { seed, data, ...lateAndCopies(seed, start, data) }
    })
    const storeA = new PostgresTelemetryStore(a.app.db, DAY)
    const storeB = new PostgresTelemetryStore(b.app.db, DAY)
    const refStore = new PostgresTelemetryStore(ref.app.db)
    const pks: number[] = []
    for (const d of devices) {
      const pk = (await registerDevice(a, uniqueName('ckill'))).id
      pks.push(pk)
      await storeA.write(withPk(d.data, pk))
    }

    // Replica a's run stops inside its 5th unit; its connection is terminated from replica b.
    let killed = false
    const records = new PausingRecords(a.app.db, 5, async (conn) => {
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn)
      await sql`select pg_terminate_backend(${rows[0]?.pid})`.execute(b.app.db)
      killed = true
    })
    const interrupted = new CompactionJob(a.app.db, records, DAY, 'replica-a', a.app.log)
    const rawBefore = await rawUnitsOfAll(a.app.db, pks)
    await assert.rejects(interrupted.run(), 'the run dies with its connection')
    assert.ok(killed)
    const rawAfter = await rawUnitsOfAll(a.app.db, pks)
    assert.equal(rawAfter, rawBefore - 4, `4 units compacted before the kill, ${rawAfter} left raw`)

    // Late data and copies through replica b, then b's job (the lock died with the session).
    for (const [i, d] of devices.entries())
      await storeB.write(withPk([...d.late, ...d.copies], pks[i] as number))
    const jobB = new CompactionJob(b.app.db, storeB.records, DAY, 'replica-b', b.app.log)
    const resumed = await jobB.run()
    assert.ok(resumed !== 'busy' && resumed.compacted > 0, JSON.stringify(resumed))
    const jobA = new CompactionJob(a.app.db, storeA.records, DAY, 'replica-a', a.app.log)
    const again = await jobA.run()
    assert.ok(again !== 'busy' && again.compacted === 0, JSON.stringify(again))

    // The same rows as one uninterrupted compaction of the same history in the reference's schema.
    for (const [i, d] of devices.entries()) {
      const pk = pks[i] as number
      const raw = (await registerDevice(ref, uniqueName('craw'))).id
      const clean = (await registerDevice(ref, uniqueName('cclean'))).id
      await refStore.write([...withPk(d.data, raw), ...withPk(d.data, clean)])
      await compactDevice(ref.app.db, refStore, clean)
      await refStore.write([
        ...withPk([...d.late, ...d.copies], raw),
        ...withPk([...d.late, ...d.copies], clean),
      ])
      await compactDevice(ref.app.db, refStore, clean)
      assert.equal(await rawRows(a.app.db, pk), 0, `nothing raw left (seed ${d.seed})`)
      assert.deepStrictEqual(
        await snapshot(a.app.db, pk),
        await snapshot(ref.app.db, clean),
        `rows (seed ${d.seed})`,
      )
      assert.deepStrictEqual(
        await readAll(storeA, pk, start, stop, integrateEnergy),
        await readAll(refStore, raw, start, stop, integrateEnergy),
        `reads (seed ${d.seed})`,
      )
    }
  } finally {
    await a.close()
    await b.close()
    await own.drop()
  }
})

const rawUnitsOfAll = async (db: Kysely<Database>, pks: number[]) =>
  (await Promise.all(pks.map((pk) => rawUnitsOf(db, pk)))).reduce((sum, n) => sum + n, 0)

/** Compacts every unit of one device (no job: the reference's other devices stay raw). */
async function compactDevice(db: Kysely<Database>, store: PostgresTelemetryStore, devicePk: number) {
  for (const unit of (await rawUnits(db, 0, Date.now())).filter((u) => u.devicePk === devicePk))
    assert.notEqual(await compactUnit(db, store.records, unit), 'skipped')
}
