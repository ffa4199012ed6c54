/**
 * npm run bench:telemetry-write — rows/s of PostgresTelemetryStore.write for ingest-shaped
 * datagrams (10 samples × voltage_dc/current_dc, as bench/lib/load.ts sends them, through
 * toDatagram), in batches of 1,000 as the ingest flushes them. Compares the write statements in
 * the same run: 'values' (multi-row VALUES, 17 parameters a row: the statement before) and
 * 'records' (one binary telemetry[] parameter: the default), runs interleaved and the table
 * emptied before each, medians reported. Two value sets: the integers of load.ts, and decimals
 * like real meter readings. On PGlite in memory, then on PostgreSQL too when DATABASE_URL is set
 * (a fresh schema, dropped at the end). One JSON line per engine and set, CPU per run and per row;
 * server CPU (PostgreSQL only) is the backend's from /proc, as PGlite's is node's.
 */
import { readFileSync } from 'node:fs'
import { type Kysely, sql } from 'kysely'
import { type Datagram, PostgresTelemetryStore, toDatagram } from '../src/modules/telemetry/index.ts'
import { connectDatabase, type Database, migrateToLatest } from '../src/platform/db/index.ts'
import { createSchema, tempDir } from '../test/helpers/env.ts'
import { jsonDatagram } from './lib/load.ts'
import { ValuesTelemetryStore } from './lib/values-insert.ts'

const DEVICES = 1000
const BATCH = 1000
const BATCHES_PER_RUN = 10
const ROUNDS = 7
const STATEMENTS = ['values', 'records'] as const
type Statement = (typeof STATEMENTS)[number]

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

interface Measurement {
  t: number
  type: string
  val: number
}

/** Datagrams of one run: every device in turn, fresh seqs, as the ingest builds them from JSON. */
function batches(pks: number[], decimals: boolean): Datagram[][] {
  const base = Date.now() - 86_400_000
  const out: Datagram[][] = []
  for (let b = 0; b < BATCHES_PER_RUN; b++) {
    const batch: Datagram[] = []
    for (let i = 0; i < BATCH; i++) {
      const seq = b * BATCH + i
      const pk = pks[seq % pks.length] as number
      const message = JSON.parse(jsonDatagram(`bench-${pk}`, seq, base + seq * 10_000))
      const measurements: Measurement[] = message.measurements.map(
        (m: { ts: string; type: string; val: number }, k: number) => ({
          t: Date.parse(m.ts),
          type: m.type,
          // A reading such as 751.37 V or 298.06 A instead of load.ts's whole numbers.
          val: decimals ? Math.round((m.val + ((seq * 7 + k) % 100) / 100) * 100) / 100 : m.val,
        }),
      )
      batch.push(toDatagram(pk, `bench-${pk}`, seq, measurements))
    }
    out.push(batch)
  }
  return out
}

/** User + system CPU ms of a local backend process, or null when /proc does not show it. */
function processCpuMs(pid: number | null): number | null {
  if (pid === null) return null
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return null
  }
}

async function benchEngine(db: Kysely<Database>, engine: string, backendPid: number | null) {
  await sql`
    insert into devices (device_id, device_name)
    select 'bench-' || g, 'bench-' || g from generate_series(1, ${DEVICES}) g`.execute(db)
  const { rows } = await sql<{ id: number }>`select id from devices order by id`.execute(db)
  const pks = rows.map((r) => Number(r.id))
  const stores = Object.fromEntries(
    STATEMENTS.map((s) => [
      s,
      s === 'values' ? new ValuesTelemetryStore(db) : new PostgresTelemetryStore(db),
    ]),
  ) as Record<Statement, PostgresTelemetryStore>

  for (const decimals of [false, true]) {
    const data = batches(pks, decimals)
    const rowsPerRun = BATCH * BATCHES_PER_RUN
    const result = Object.fromEntries(
      STATEMENTS.map((s) => [
        s,
        { rowsPerS: [] as number[], nodeCpu: [] as number[], serverCpu: [] as number[] },
      ]),
    ) as Record<Statement, { rowsPerS: number[]; nodeCpu: number[]; serverCpu: number[] }>
    for (let round = 0; round <= ROUNDS; round++) {
      // Alternate which statement goes first, so drift on a noisy machine hits both alike.
      const order = round % 2 === 0 ? STATEMENTS : [...STATEMENTS].reverse()
      for (const statement of order) {
        await sql`truncate telemetry`.execute(db)
        const server0 = processCpuMs(backendPid)
        const cpu0 = process.cpuUsage()
        const t0 = performance.now()
        for (const batch of data) await stores[statement].write(batch)
        const ms = performance.now() - t0
        const cpu = process.cpuUsage(cpu0)
        const server1 = processCpuMs(backendPid)
        const { rows: count } = await sql<{ n: number }>`select count(*)::int as n from telemetry`.execute(db)
        if (count[0]?.n !== rowsPerRun) throw new Error(`${statement}: stored ${count[0]?.n} rows`)
        if (round === 0) continue // warms caches and the JIT
        const r = result[statement]
        r.rowsPerS.push((rowsPerRun / ms) * 1000)
        r.nodeCpu.push((cpu.user + cpu.system) / 1000)
        if (server0 !== null && server1 !== null) r.serverCpu.push(server1 - server0)
      }
    }
    const perRow = (ms: number) => Number(((ms * 1000) / rowsPerRun).toFixed(1))
    const summary = (s: Statement) => {
      const { rowsPerS, nodeCpu, serverCpu } = result[s]
      const server = serverCpu.length > 0 ? median(serverCpu) : undefined
      return {
        rows_per_s: Math.round(median(rowsPerS)),
        node_cpu_ms: Math.round(median(nodeCpu)),
        node_us_per_row: perRow(median(nodeCpu)),
        ...(server === undefined
          ? {}
          : { server_cpu_ms: Math.round(server), server_us_per_row: perRow(server) }),
      }
    }
    const old = summary('values')
    const ratio = (a: number | undefined, b: number | undefined) =>
      a && b ? Number((b / a).toFixed(2)) : undefined
    const line: Record<string, unknown> = {
      engine,
      value_set: decimals ? 'decimals' : 'integers',
      rows_per_run: rowsPerRun,
      runs: ROUNDS,
    }
    for (const s of STATEMENTS) {
      const now = summary(s)
      line[s] = now
      if (s === 'values') continue
      // Against the statement before: > 1 is faster for rows/s, < 1 is cheaper for CPU.
      line[`${s}_vs_values`] = {
        rows_per_s: ratio(old.rows_per_s, now.rows_per_s),
        node_cpu: ratio(old.node_cpu_ms, now.node_cpu_ms),
        server_cpu: ratio(old.server_cpu_ms, now.server_cpu_ms),
      }
    }
    process.stdout.write(`${JSON.stringify(line)}\n`)
  }
}

async function onPglite() {
  const dir = tempDir()
  const { db } = await connectDatabase({ dataDir: dir.path, poolMax: 1, inMemory: true })
  try {
    await migrateToLatest(db)
    await benchEngine(db, 'pglite', null)
  } finally {
    await db.destroy()
    dir.remove()
  }
}

async function onPostgres(baseUrl: string) {
  const dir = tempDir()
  const schema = await createSchema(baseUrl)
  // One connection: every write runs on the backend whose CPU is read.
  const { db } = await connectDatabase({ databaseUrl: schema.url, dataDir: dir.path, poolMax: 1 })
  try {
    await migrateToLatest(db)
    const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)
    await benchEngine(db, 'postgres', rows[0]?.pid ?? null)
  } finally {
    await db.destroy()
    await schema.drop()
    dir.remove()
  }
}

async function main() {
  await onPglite()
  if (process.env.DATABASE_URL) await onPostgres(process.env.DATABASE_URL)
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
