/**
 * npm run bench:energy — recomputes 2,000 dirty energy intervals of 1,000
 * devices (1 Hz DC data, 10-sample datagrams), two per device: adjacent, or an hour apart. Prints one
 * JSON line per layout: wall time, this process's CPU time (PGlite runs inside it) and queries per
 * run. PGlite in memory, or PostgreSQL with TEST_DATABASE_URL (a fresh schema). Not part of `npm test`. */
import { type KyselyPlugin, sql } from 'kysely'
import pino from 'pino'
import { loadConfig } from '../src/config.ts'
import { DevicesService } from '../src/modules/devices/index.ts'
import { createTelemetryModule } from '../src/modules/telemetry/index.ts'
import { connectDatabase, migrateToLatest } from '../src/platform/db/index.ts'
import { createSchema, realDatabaseUrl, tempDir } from '../test/helpers/env.ts'

const DEVICES = 1000
const RUNS = 5
const MIN = 60_000
const H0 = Math.floor((Date.now() - 2 * 86_400_000) / 3_600_000) * 3_600_000

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function main() {
  const dir = tempDir()
  const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
  const { db: raw, engine } = await connectDatabase({
    databaseUrl: schema?.url,
    dataDir: dir.path,
    poolMax: 4,
    inMemory: true,
  })
  let queries = 0
  const counter: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      queries++
      return args.result
    },
  }
  const db = raw.withPlugin(counter)
  try {
    await migrateToLatest(raw)
    await sql`
      insert into devices (device_id, device_name, config)
      select 'bench-' || g, 'bench-' || g, '{"sampling_cadence_ms": 1000}'::jsonb
      from generate_series(1, ${DEVICES}) g`.execute(raw)
    // 65 minutes of 1 Hz data per device, as the ingest stores it: one row per 10-sample datagram.
    await sql`
      insert into telemetry (device_pk, t0, seq, n, step_ms, voltage_dc, current_dc)
      select d.id, ${new Date(H0).toISOString()}::timestamptz + g * interval '10 seconds', g, 10, 1000,
        array_fill(750::float8, array[10]), array_fill((d.id % 400)::float8, array[10])
      from devices d cross join generate_series(0, 389) g`.execute(raw)
    const config = loadConfig({ DATA_DIR: dir.path, LOG_LEVEL: 'silent' })
    const telemetry = createTelemetryModule({
      db,
      devices: new DevicesService(db),
      config,
      log: pino({ level: 'silent' }),
    })
    const layouts = { adjacent: [5 * MIN, 10 * MIN], hour_apart: [5 * MIN, 60 * MIN] }
    for (const [layout, offsets] of Object.entries(layouts)) {
      const times: number[] = []
      const cpu: number[] = []
      const counts: number[] = []
      for (let run = 0; run <= RUNS; run++) {
        await sql`delete from energy_dirty`.execute(raw)
        await sql`
          insert into energy_dirty (device_pk, start)
          select d.id, ${new Date(H0).toISOString()}::timestamptz + o * interval '1 millisecond'
          from devices d cross join unnest(${offsets}::int[]) o`.execute(raw)
        queries = 0
        const t0 = performance.now()
        const cpu0 = process.cpuUsage()
        const done = await telemetry.service.energy.recompute({ upTo: Date.now() })
        const ms = performance.now() - t0
        const used = process.cpuUsage(cpu0)
        if (done !== 2 * DEVICES) throw new Error(`recomputed ${done} intervals`)
        // The first run warms caches and plans.
        if (run === 0) continue
        times.push(ms)
        cpu.push((used.user + used.system) / 1000)
        counts.push(queries)
      }
      const result = {
        engine,
        layout,
        devices: DEVICES,
        intervals: 2 * DEVICES,
        median_ms: Number(median(times).toFixed(0)),
        min_ms: Number(Math.min(...times).toFixed(0)),
        node_cpu_ms: Number(median(cpu).toFixed(0)),
        queries: median(counts),
      }
      process.stdout.write(`${JSON.stringify(result)}\n`)
    }
  } finally {
    await raw.destroy()
    await schema?.drop()
    dir.remove()
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
