import { type Kysely, sql } from 'kysely'
import type {
  Datagram,
  IntegrationOptions,
  PostgresTelemetryStore,
  PowerSample,
  SeriesQuery,
} from '../../src/modules/telemetry/index.ts'
import type { Database } from '../../src/platform/db/index.ts'
import { seeded } from './random.ts'
import { appRetentionRan } from './retention.ts'

/** Data and reads of the compaction tests (test/unit/telemetry/compaction-*.test.ts). */

const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000
const ODD = [-0, 5e-324, 1.7976931348623157e308, -1e-300, 0.1 + 0.2]

/** 3 h of datagrams (DC, AC with Q and phase angle, temperature only), irregular ones, nulls, odd values. */
export function compactionDatagrams(seed: number, start: number, firstSeq = 0): Omit<Datagram, 'devicePk'>[] {
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

/**
 * What arrives after `data` (of compactionDatagrams(seed, start)): new datagrams into its hours
 * (none at a time already taken: the order of two samples of one time is the engine's), and
 * copies of some of its datagrams (stored once).
 */
export function lateAndCopies(seed: number, start: number, data: readonly Omit<Datagram, 'devicePk'>[]) {
  const random = seeded(seed + 1)
  const taken = new Set(data.flatMap((d) => d.times))
  const late = compactionDatagrams(seed + 2, start + 30 * 60_000 + 500, 1_000_000).filter(
    (d) => random() < 0.05 && !d.times.some((time) => taken.has(time)),
  )
  const copies = data.filter(() => random() < 0.1)
  return { late, copies }
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
const FNS: SeriesQuery['fn'][] = ['mean', 'min', 'max', 'sum', 'count', 'last']

/**
 * Everything a reader sees of a device in [start, stop): /metrics windows, power samples, and the
 * energy `integrate` computes from them (the module's integrateEnergy: a unit test passes it, as
 * only its own module's tests may open its internals).
 */
export async function readAll(
  store: PostgresTelemetryStore,
  devicePk: number,
  start: number,
  stop: number,
  integrate: (power: PowerSample[], options: IntegrationOptions) => unknown,
) {
  const random = seeded(7) // the same windows for every device
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
  for (const fn of ['mean', 'min', 'max', 'sum', 'count'] as const)
    for (const everyMs of [60_000, HOUR_MS])
      out.push(await store.query(q({ fn, everyMs, metric: 'current_dc' })))
  const power = await store.powerSamples(devicePk, start, stop)
  out.push(power)
  out.push(integrate(power, { intervalMs: 300_000, maxGapMs: 5000, cadenceMs: 1000 }))
  return out
}

/** The device's rollups go and all its hours are marked: recomputed from what is stored now. */
export async function recomputeRollups(db: Kysely<Database>, devicePk: number) {
  await sql`delete from telemetry_rollups where device_pk = ${devicePk}`.execute(db)
  await sql`insert into rollup_dirty (device_pk, hour)
    select distinct ${devicePk}::int, date_trunc('hour', to_timestamp(floor(extract(epoch from t0) / 3600) * 3600)) from telemetry
    where device_pk = ${devicePk} on conflict do nothing`.execute(db)
}

/** The device's rows (without device_pk: two devices with the same history compare equal). */
export async function snapshot(db: Kysely<Database>, devicePk: number) {
  const { rows } = await sql<Record<string, unknown>>`
    select * from telemetry where device_pk = ${devicePk} order by t0, seq`.execute(db)
  return rows.map(({ device_pk: _, ...row }) => row)
}

/** Raw rows of the device whose samples are not in compact rows yet (2: FLAG_COMPACTED). */
export async function rawRows(db: Kysely<Database>, devicePk: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from telemetry
    where device_pk = ${devicePk} and seq >= 0 and flags & 2 = 0`.execute(db)
  return rows[0]?.n ?? 0
}

/**
 * Gives the days `daysAgo` partitions of their own, as production has. First waits for the app's
 * retention job, which runs 1 s after start and moves rows out of the default partition (a query
 * racing a partition being attached can miss the rows moved).
 */
export async function dayPartitions(db: Kysely<Database>, daysAgo: number[]) {
  await appRetentionRan(db)
  for (const days of daysAgo) {
    const day = Math.floor(Date.now() / DAY_MS) * DAY_MS - days * DAY_MS
    const name = `telemetry_p${new Date(day).toISOString().slice(0, 10).replace(/-/g, '')}`
    await sql`create table if not exists ${sql.id(name)} partition of telemetry
      for values from (${sql.lit(new Date(day).toISOString())}) to (${sql.lit(new Date(day + DAY_MS).toISOString())})`.execute(
      db,
    )
  }
}
