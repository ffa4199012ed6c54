/**
 * Storage at rest: bytes per measurement of raw telemetry rows and of the same data compacted
 * (TELEMETRY_COMPACT_AFTER_H, src/modules/telemetry/compaction-job.ts). Profile: 3 meters, one
 * day at 1 Hz, datagrams of 10 samples, 12 types (the 10 stored ones, power_reactive and
 * phase_angle), values at a meter's resolution (0.1 V, 0.01 A, 0.001 Hz…) varying slowly with
 * noise. Size: pg_total_relation_size of the day's partition (heap, TOAST, primary key), after
 * VACUUM FULL for raw and after the job (which rewrites the day) for compacted, plus
 * telemetry_compacted_keys (the compacted datagrams' keys) for compacted. On PGlite, then on
 * PostgreSQL too when DATABASE_URL is set. `npm run bench:storage`
 */
import { type Kysely, sql } from 'kysely'
import pino from 'pino'
import { CompactionJob, type Datagram, PostgresTelemetryStore } from '../src/modules/telemetry/index.ts'
import { connectDatabase, type Database, migrateToLatest } from '../src/platform/db/index.ts'
import { createSchema, tempDir } from '../test/helpers/env.ts'
import { seeded } from '../test/helpers/random.ts'

const DAY = 86_400_000
const TARGET = 8
const METERS = 3
const day = Math.floor(Date.now() / DAY) * DAY - 3 * DAY

/** [base, slow amplitude, slow period (s), noise, resolution] per type. */
const PROFILE: Record<string, [number, number, number, number, number]> = {
  voltage_dc: [750, 20, 600, 1, 0.1],
  current_dc: [0, 300, 120, 5, 0.01],
  voltage_ac: [15_000, 200, 900, 10, 1],
  current_ac: [100, 50, 120, 2, 0.1],
  frequency: [16.7, 0.05, 900, 0.01, 0.001],
  pf: [0.9, 0.05, 300, 0.01, 0.001],
  thd_v: [3, 1, 600, 0.2, 0.1],
  thd_i: [5, 2, 600, 0.5, 0.1],
  temperature: [35, 5, 3000, 0.1, 0.1],
  battery: [24, 0.5, 3000, 0.02, 0.01],
  power_reactive: [500, 300, 120, 20, 1],
  phase_angle: [25, 5, 120, 1, 0.01],
}
/** The full meter, and the ingest bench's shape (V and I of a DC meter, 20 measurements a datagram). */
const PROFILES: [string, string[]][] = [
  ['12 types', Object.keys(PROFILE)],
  ['DC V and I', ['voltage_dc', 'current_dc']],
]
const OTHER = new Set(['power_reactive', 'phase_angle'])

function datagrams(devicePk: number, types: readonly string[]): Datagram[] {
  const random = seeded(devicePk)
  const out: Datagram[] = []
  for (let seq = 0; seq < 8640; seq++) {
    const t0 = day + seq * 10_000
    const times = Array.from({ length: 10 }, (_, i) => t0 + i * 1000)
    const values: Record<string, number[]> = {}
    for (const type of types) {
      const [base, amp, period, noise, res] = PROFILE[type] as [number, number, number, number, number]
      values[type] = times.map((t) => {
        const x = base + amp * Math.sin(t / 1000 / period + devicePk) + noise * (random() - 0.5)
        return Math.round(x / res) / Math.round(1 / res)
      })
    }
    const otherValues = Object.fromEntries(Object.entries(values).filter(([type]) => OTHER.has(type)))
    const stored = Object.fromEntries(Object.entries(values).filter(([type]) => !OTHER.has(type)))
    const other = Object.keys(otherValues).length > 0 ? otherValues : null
    out.push({ devicePk, deviceId: 'x', seq, t0, times, values: stored, other, outOfRange: [] })
  }
  return out
}

async function daySize(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ bytes: string }>`
    select pg_total_relation_size(${`telemetry_p${new Date(day).toISOString().slice(0, 10).replace(/-/g, '')}`}::regclass)::text as bytes`.execute(
    db,
  )
  return Number(rows[0]?.bytes)
}

async function benchEngine(db: Kysely<Database>, engine: string, profile: string, types: readonly string[]) {
  await migrateToLatest(db)
  await sql`delete from devices`.execute(db)
  const name = `telemetry_p${new Date(day).toISOString().slice(0, 10).replace(/-/g, '')}`
  await sql`create table if not exists ${sql.id(name)} partition of telemetry
    for values from (${sql.lit(new Date(day).toISOString())}) to (${sql.lit(new Date(day + DAY).toISOString())})`.execute(
    db,
  )
  const store = new PostgresTelemetryStore(db, DAY)
  let measurements = 0
  for (let pk = 1; pk <= METERS; pk++) {
    await sql`insert into devices (device_id, device_name) values (${`bench-${pk}`}, 'b')`.execute(db)
    const { rows } = await sql<{
      id: number
    }>`select id from devices where device_id = ${`bench-${pk}`}`.execute(db)
    const list = datagrams(rows[0]?.id as number, types)
    for (let i = 0; i < list.length; i += 1000) await store.write(list.slice(i, i + 1000))
    measurements += list.length * 10 * types.length
  }
  await sql`vacuum full ${sql.id(name)}`.execute(db)
  const raw = await daySize(db)
  await sql`delete from telemetry_compaction_state`.execute(db)
  const job = new CompactionJob(db, store.records, DAY, 'bench', pino({ level: 'silent' }))
  const started = Date.now()
  for (let i = 0; i < 5; i++) await job.run()
  const seconds = (Date.now() - started) / 1000
  // The keys of the compacted datagrams (what a redelivered copy is checked against) count too.
  await sql`vacuum full telemetry_compacted_keys`.execute(db) // the previous profile's rows are dead tuples
  const { rows: keyRows } = await sql<{ bytes: string }>`
    select pg_total_relation_size('telemetry_compacted_keys')::text as bytes`.execute(db)
  const keys = Number(keyRows[0]?.bytes)
  const compacted = (await daySize(db)) + keys
  const per = (bytes: number) => (bytes / measurements).toFixed(2)
  process.stdout.write(
    `${engine}, ${profile}: ${measurements.toLocaleString('en')} measurements (${METERS} meters, 1 Hz, 24 h): ` +
      `raw ${per(raw)} B/measurement (${raw.toLocaleString('en')} B), compacted ${per(compacted)} B/measurement ` +
      `(${compacted.toLocaleString('en')} B, of which keys ${keys.toLocaleString('en')} B; job ${seconds.toFixed(1)} s); target ≤ ${TARGET}\n`,
  )
}

async function main() {
  const dir = tempDir()
  const pglite = await connectDatabase({ dataDir: dir.path, poolMax: 1, inMemory: true })
  try {
    for (const [profile, types] of PROFILES) await benchEngine(pglite.db, 'pglite', profile, types)
  } finally {
    await pglite.db.destroy()
  }
  if (process.env.DATABASE_URL) {
    const schema = await createSchema(process.env.DATABASE_URL)
    const { db } = await connectDatabase({ databaseUrl: schema.url, dataDir: dir.path, poolMax: 2 })
    try {
      for (const [profile, types] of PROFILES) await benchEngine(db, 'postgres', profile, types)
    } finally {
      await db.destroy()
      await schema.drop()
    }
  }
  dir.remove()
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
