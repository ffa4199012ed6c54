/**
 * npm run bench:ingest [-- --quick] [--devices N] [--messages M] [--forged K] [--rate R]
 *                        [--generator raw|mqttjs]
 *
 * N meters publish DC datagrams (20 measurements) at QoS 2 as fast as the broker takes them
 * (or, with --rate, at R msg/s in total, paced: latency below saturation);
 * the server (a child process: the real entry point) journals, deduplicates, archives and stores
 * them. Two limits are measured in the same run on the same machine: the MQTT baseline (a bare
 * subscriber counting the same messages) and the store ceiling (the same measurements COPY'd as
 * narrow rows). Runs on the embedded defaults, or with DATABASE_URL/MQTT_URL on real engines
 * (MQTT_URL=own starts a Mosquitto with deploy/mosquitto/mosquitto.conf on a free port).
 * The meters are plain-socket QoS 2 publishers (--generator raw, see lib/raw-publisher.ts) unless
 * --generator mqttjs: the generator shares the machine, and MQTT.js costs it several times more.
 * Prints progress, then one JSON line.
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { startMosquitto } from '../test/helpers/mosquitto.ts'
import { startServer } from '../test/helpers/process.ts'
import { mqttBaseline, startBareAedes, storeCeiling } from './lib/baselines.ts'
import {
  connectAll,
  connectPublishers,
  cpuSeconds,
  cpuSecondsByCommand,
  histogramQuantile,
  machineCpuSeconds,
  metricSum,
  publishAll,
  publishPaced,
  rssMb,
} from './lib/load.ts'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    devices: { type: 'string' },
    messages: { type: 'string' },
    window: { type: 'string', default: '8' },
    forged: { type: 'string' },
    rate: { type: 'string' },
    generator: { type: 'string', default: 'raw' },
  },
})
const quick = args.quick
const devices = Number(args.devices ?? (quick ? 200 : 1000))
const messages = Number(args.messages ?? (quick ? 10_000 : 200_000))
const perDevice = Math.max(1, Math.round(messages / devices))
const total = perDevice * devices
const window = Number(args.window)
const forged = Number(args.forged ?? (quick ? 0 : 1_000_000))
const rate = args.rate === undefined ? undefined : Number(args.rate)
if (args.generator !== 'raw' && args.generator !== 'mqttjs') throw new Error('--generator raw|mqttjs')
const generator: 'raw' | 'mqttjs' = args.generator
const databaseUrl = process.env.DATABASE_URL
// MQTT_URL=own: a Mosquitto of the bench's own with the project's config (deploy/mosquitto). A stock
// Mosquitto queues only 1000 messages per subscriber and silently drops the rest when it falls behind.
let mqttUrl = process.env.MQTT_URL === 'own' ? undefined : process.env.MQTT_URL?.split(',')[0]
const ownMosquitto = process.env.MQTT_URL === 'own'
const log = (text: string) => process.stderr.write(`[bench] ${text}\n`)

async function freshSchema(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `bench_${process.pid}`
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  await c.query(`drop schema if exists ${schema} cascade; create schema ${schema}`)
  await c.end()
  const u = new URL(url)
  u.searchParams.set('options', `-c search_path=${schema}`)
  return {
    url: u.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: url })
      await d.connect()
      await d.query(`drop schema if exists ${schema} cascade`)
      await d.end()
    },
  }
}

interface CpuSplit {
  machine: number
  generator: number
  commands: Record<string, number>
}

async function cpuSplit(): Promise<CpuSplit> {
  const usage = process.cpuUsage()
  return {
    machine: await machineCpuSeconds(),
    generator: (usage.user + usage.system) / 1e6,
    commands: await cpuSecondsByCommand(['mosquitto', 'postgres']),
  }
}

/** µs of CPU per message, by part (embedded mode: broker and database are inside the server). */
function cpuPerMessage(before: CpuSplit, after: CpuSplit, server: number, messages: number) {
  const us = (seconds: number) => Math.round((seconds / messages) * 1e6)
  const machine = after.machine - before.machine
  const generator = after.generator - before.generator
  const broker = (after.commands.mosquitto ?? 0) - (before.commands.mosquitto ?? 0)
  const database = (after.commands.postgres ?? 0) - (before.commands.postgres ?? 0)
  const other = Math.max(machine - server - generator - broker - database, 0)
  return {
    machine: us(machine),
    server: us(server),
    generator: us(generator),
    broker: us(broker),
    database: us(database),
    other: us(other),
  }
}

async function main() {
  const mosquitto = ownMosquitto ? await startMosquitto() : undefined
  if (mosquitto) mqttUrl = mosquitto.url
  const mode = `${databaseUrl ? 'postgres' : 'pglite'}+${mqttUrl ? 'mosquitto' : 'embedded-broker'}`
  log(`${mode}: ${devices} devices × ${perDevice} datagrams = ${total} messages (${total * 20} measurements)`)
  const ids = Array.from({ length: devices }, (_, i) => `bench-${String(i).padStart(5, '0')}`)

  // 1. MQTT baseline on the same kind of broker.
  let baseline: number
  if (mqttUrl) {
    baseline = await mqttBaseline(mqttUrl, ids, perDevice, window, generator)
  } else {
    const port = 20000 + (process.pid % 20000)
    const broker = await startBareAedes(port)
    baseline = await mqttBaseline(`mqtt://127.0.0.1:${port}`, ids, perDevice, window, generator)
    broker.kill('SIGTERM')
    await once(broker, 'exit')
  }
  log(`mqtt baseline: ${Math.round(baseline)} msg/s`)

  // 2. Store ceiling on the same engine.
  const ceilingSchema = databaseUrl ? await freshSchema(databaseUrl) : undefined
  const ceiling = await storeCeiling(ceilingSchema?.url, devices, total * 20)
  await ceilingSchema?.drop()
  log(`store ceiling: ${Math.round(ceiling)} measurements/s`)

  // 3. The server, on a fresh database.
  const dataDir = mkdtempSync(join(tmpdir(), 'iot-meter-bench-'))
  const schema = databaseUrl ? await freshSchema(databaseUrl) : undefined
  const server = await startServer({
    DATA_DIR: dataDir,
    MQTT_CLIENT_ID: `bench-server-${process.pid}`,
    ...(schema ? { DATABASE_URL: schema.url } : {}),
    ...(mqttUrl ? { MQTT_URL: mqttUrl } : {}),
  })
  const brokerUrl = mqttUrl ?? `mqtt://127.0.0.1:${server.brokerPort}`
  const metrics = async () => (await fetch(`${server.baseUrl}/metrics`)).text()
  for (let i = 0; i < ids.length; i += 25) {
    await Promise.all(
      ids.slice(i, i + 25).map((device_id) =>
        fetch(`${server.baseUrl}/api/devices`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ device_id, device_name: device_id }),
        }),
      ),
    )
  }
  const clients = await connectPublishers(brokerUrl, ids, '', generator)
  // Warm-up: one datagram per meter (seq 0), so caches, dedup windows, JIT and the database's
  // plans are warm as on a running server; the timed run starts at seq 1 and its latency counts
  // only what it published.
  const sampleBase = Date.now() - 30 * 86_400_000
  await publishAll(clients, ids, 1, 1, sampleBase - 10_000)
  while (metricSum(await metrics(), 'ingest_messages_total') < devices)
    await new Promise((r) => setTimeout(r, 100))
  await new Promise((r) => setTimeout(r, 1000))
  const warm = await metrics()
  const storedBefore = metricSum(warm, 'ingest_messages_total')
  const rssBefore = await rssMb(server.child.pid as number)
  const cpuBefore = await cpuSeconds(server.child.pid as number)
  // Where the machine's CPU goes in the timed run: the server, the load generator (this process),
  // the broker, the database, the rest (kernel, other jobs).
  const splitBefore = await cpuSplit()

  const started = performance.now()
  let lastLog = 0
  const onSent = (sent: number) => {
    if (performance.now() - lastLog > 2000) {
      lastLog = performance.now()
      log(`sent ${sent}/${total}`)
    }
  }
  const publishing = rate
    ? publishPaced(clients, ids, perDevice, rate, sampleBase, onSent, 1)
    : publishAll(clients, ids, perDevice, window, sampleBase, onSent, 1)
  let stored = 0
  let lastProgress = 0
  while (stored < total) {
    await new Promise((r) => setTimeout(r, 100))
    stored = metricSum(await metrics(), 'ingest_messages_total') - storedBefore
    if (performance.now() - lastProgress > 2000) {
      lastProgress = performance.now()
      log(`stored ${stored}/${total} (${Math.round(stored / ((performance.now() - started) / 1000))} msg/s)`)
    }
    if (performance.now() - started > 900_000)
      throw new Error(`only ${stored} of ${total} stored after 15 min`)
  }
  const seconds = (performance.now() - started) / 1000
  const serverCpu = (await cpuSeconds(server.child.pid as number)) - cpuBefore
  const splitAfter = await cpuSplit()
  const published = await publishing // paced: the achieved send rate; else the count
  const sendRate = rate ? published : undefined
  const text = await metrics()
  // BENCH_METRICS_OUT=file: the server's last /metrics scrape, for a closer look at a run.
  if (process.env.BENCH_METRICS_OUT) writeFileSync(process.env.BENCH_METRICS_OUT, text)
  const rss = await rssMb(server.child.pid as number)

  // 4. Forged ids: messages from distinct unregistered ids must cost a counter, not memory.
  let forgedGrowth: number | null = null
  if (forged > 0) {
    const [forger] = await connectAll(brokerUrl, ['forger'], 'bench-')
    const rejectedBefore = metricSum(text, 'ingest_rejected_total')
    for (let i = 0; i < forged; i += 1000) {
      await Promise.all(
        Array.from({ length: Math.min(1000, forged - i) }, (_, k) => {
          const id = `ghost-${i + k}`
          return forger?.publishAsync(
            `iot/${id}/telemetry`,
            JSON.stringify({
              v: 2,
              device_id: id,
              ts: new Date().toISOString(),
              seq: 0,
              msg_type: 'telemetry',
              measurements: [{ ts: new Date().toISOString(), type: 'voltage_dc', val: 1 }],
            }),
            { qos: 1 },
          )
        }),
      )
      if (i % 100_000 === 0) log(`forged ${i}/${forged}`)
    }
    while (metricSum(await metrics(), 'ingest_rejected_total') - rejectedBefore < forged)
      await new Promise((r) => setTimeout(r, 200))
    forgedGrowth = (await rssMb(server.child.pid as number)) - rss
    await forger?.endAsync()
  }
  await Promise.all(clients.map((c) => c.endAsync()))

  // 5. Storage per measurement: table and indexes.
  let bytes = 0
  if (schema) {
    const c = new pg.Client({ connectionString: schema.url })
    await c.connect()
    bytes = Number((await c.query(`select pg_total_relation_size('telemetry') as b`)).rows[0].b)
    await c.end()
  }
  server.child.kill('SIGTERM')
  await once(server.child, 'exit')
  if (!schema) {
    const db = new PGlite(join(dataDir, 'pglite'))
    bytes = Number(
      (await db.query<{ b: number }>(`select pg_total_relation_size('telemetry') as b`)).rows[0]?.b,
    )
    await db.close()
  }
  await schema?.drop()
  await mosquitto?.stop()
  rmSync(dataDir, { recursive: true, force: true })

  const measurements = total * 20
  const result = {
    mode,
    devices,
    generator,
    msgs: total,
    ...(rate ? { target_rate: rate, send_rate: Math.round(sendRate as number) } : {}),
    measurements,
    seconds: Number(seconds.toFixed(2)),
    msgs_per_s: Math.round(total / seconds),
    measurements_per_s: Math.round(measurements / seconds),
    p50_ms: Math.round(histogramQuantile(text, 'ingest_lag_seconds', 0.5, warm) * 1000),
    p99_ms: Math.round(histogramQuantile(text, 'ingest_lag_seconds', 0.99, warm) * 1000),
    mqtt_baseline_msgs_per_s: Math.round(baseline),
    mqtt_ratio: Number((total / seconds / baseline).toFixed(3)),
    store_ceiling_measurements_per_s: Math.round(ceiling),
    store_ratio: Number((measurements / seconds / ceiling).toFixed(3)),
    bytes_per_measurement: Number((bytes / measurements).toFixed(2)),
    // CPU the server used per message (all its threads): steadier than rates on a shared machine.
    server_cpu_us_per_msg: Math.round((serverCpu / total) * 1e6),
    cpu_us_per_msg: cpuPerMessage(splitBefore, splitAfter, serverCpu, total),
    rss_mb: rss,
    rss_before_mb: rssBefore,
    forged_ids: forged,
    forged_rss_growth_mb: forgedGrowth,
    duplicates: metricSum(text, 'ingest_duplicates_total'),
    rejected: metricSum(text, 'ingest_rejected_total'),
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
