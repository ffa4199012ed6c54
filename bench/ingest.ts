/**
 * npm run bench:ingest [-- --quick] [--devices N] [--messages M] [--forged K] [--rate R]
 *                        [--generator raw|mqttjs] [--generators K] [--replicas N] [--soak-minutes M]
 *                        [--warmup W] [--sample-age-days D] [--encoding json|binary] [--server-only]
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
 * --generators K spreads the meters over K load processes (one Node process tops out near 10,000
 * msg/s: past that it measures the generator); the MQTT baseline uses the same K.
 * --replicas N runs N server processes with MQTT_SHARED_GROUP on the external broker (MQTT_URL);
 * their counts, CPU and RSS are summed, their latency histograms merged.
 * --soak-minutes M (with --rate): publishes at the paced rate for M minutes and samples RSS and the
 * minute's p99 each minute ("soak" in the JSON: flat within 10 % is the goal).
 * --warmup W: W datagrams per meter before the timed run (default 1: caches and plans warm). The
 * server's first seconds of load are also the JIT's compiling (a cold 100,000-message run spends
 * ~10 % of the server's CPU in the compiler): --warmup 20 measures the steady state instead.
 * --sample-age-days D: samples D days old (default 0: live data; 30 was the only kind before).
 * --encoding binary: the meters send the binary telemetry datagram (PROTOCOL.md) instead of JSON.
 * --server-only skips the MQTT baseline and the store ceiling (for comparing the server's CPU per
 * message between versions: those two take most of a quick run's time and measure neither).
 * Prints progress, then one JSON line.
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { startMosquitto } from '../test/helpers/mosquitto.ts'
import { type ServerProcess, serverFetch, startServer } from '../test/helpers/process.ts'
import { mqttBaseline, startBareAedes, storeCeiling } from './lib/baselines.ts'
import { type Load, startLoad } from './lib/generators.ts'
import {
  connectAll,
  cpuSeconds,
  cpuSecondsByCommand,
  histogramQuantile,
  machineCpuSeconds,
  metricSum,
  processUsage,
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
    generators: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '1' },
    'sample-age-days': { type: 'string', default: '0' },
    replicas: { type: 'string', default: '1' },
    'soak-minutes': { type: 'string' },
    'server-only': { type: 'boolean', default: false },
    encoding: { type: 'string', default: 'json' },
  },
})
const quick = args.quick
const devices = Number(args.devices ?? (quick ? 200 : 1000))
const rate = args.rate === undefined ? undefined : Number(args.rate)
const soakMinutes = args['soak-minutes'] === undefined ? 0 : Number(args['soak-minutes'])
/** The limits measured beside the server: not in a soak (stability, not ceilings), nor with --server-only. */
const withLimits = soakMinutes === 0 && !args['server-only']
if (soakMinutes > 0 && !rate) throw new Error('--soak-minutes needs --rate')
const messages =
  soakMinutes > 0 ? (rate as number) * 60 * soakMinutes : Number(args.messages ?? (quick ? 10_000 : 200_000))
const perDevice = Math.max(1, Math.round(messages / devices))
const total = perDevice * devices
const window = Number(args.window)
const forged = Number(args.forged ?? (quick ? 0 : 1_000_000))
const generators = Math.max(1, Number(args.generators))
/** Datagrams per meter before the timed run (its CPU and latency are not counted). */
const warmup = Math.max(1, Number(args.warmup))
/** How old the datagrams' samples are: 0 = live data, as a fleet sends it. */
const sampleAgeDays = Number(args['sample-age-days'])
const replicas = Math.max(1, Number(args.replicas))
if (args.generator !== 'raw' && args.generator !== 'mqttjs') throw new Error('--generator raw|mqttjs')
const generator: 'raw' | 'mqttjs' = args.generator
if (args.encoding !== 'json' && args.encoding !== 'binary') throw new Error('--encoding json|binary')
// Read by lib/load.ts's datagram(), here and in the generator processes (they inherit it).
process.env.BENCH_ENCODING = args.encoding
const databaseUrl = process.env.DATABASE_URL
// MQTT_URL=own: a Mosquitto of the bench's own with the project's config (deploy/mosquitto). A stock
// Mosquitto queues only 1000 messages per subscriber and silently drops the rest when it falls behind.
let mqttUrl = process.env.MQTT_URL === 'own' ? undefined : process.env.MQTT_URL?.split(',')[0]
const ownMosquitto = process.env.MQTT_URL === 'own'
if (replicas > 1 && !process.env.MQTT_URL)
  throw new Error('--replicas needs an external broker with shared subscriptions (MQTT_URL=own)')
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

async function cpuSplit(load: Load): Promise<CpuSplit> {
  return {
    machine: await machineCpuSeconds(),
    generator: await load.cpuSeconds(),
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

const countInLogs = (servers: ServerProcess[], text: string) =>
  servers.reduce((n, s) => n + s.output().split(text).length - 1, 0)

/** Sums the replicas' samples of a metric. */
const sumOver = (texts: string[], name: string) => texts.reduce((n, t) => n + metricSum(t, name), 0)

/**
 * A quantile of a histogram merged over the replicas: their bucket lines are summed by bound
 * (every replica has the same buckets), then read as one.
 */
function quantileOver(texts: string[], name: string, q: number, since?: string[]): number {
  const merge = (all: string[]) => {
    const sums = new Map<string, number>()
    for (const text of all)
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}_bucket{`)) continue
        const at = line.lastIndexOf(' ')
        const key = line.slice(0, at)
        sums.set(key, (sums.get(key) ?? 0) + Number(line.slice(at + 1)))
      }
    return [...sums].map(([k, v]) => `${k} ${v}`).join('\n')
  }
  return histogramQuantile(merge(texts), name, q, since && merge(since))
}

async function main() {
  const mosquitto = ownMosquitto ? await startMosquitto() : undefined
  if (mosquitto) mqttUrl = mosquitto.url
  const mode = `${databaseUrl ? 'postgres' : 'pglite'}+${mqttUrl ? 'mosquitto' : 'embedded-broker'}`
  log(
    `${mode}: ${devices} devices × ${perDevice} datagrams = ${total} messages (${total * 20} measurements), ` +
      `${generators} generator process(es), ${replicas} server replica(s)`,
  )
  const ids = Array.from({ length: devices }, (_, i) => `bench-${String(i).padStart(5, '0')}`)

  // 1. MQTT baseline on the same kind of broker, with the same load processes (a soak skips it).
  let baseline = Number.NaN
  const baselinePerDevice = Math.min(perDevice, Math.max(1, Math.round(200_000 / devices)))
  if (!withLimits) {
    // A soak measures stability, not the ceiling (nor does --server-only).
  } else if (mqttUrl) {
    baseline = await mqttBaseline(mqttUrl, ids, baselinePerDevice, window, generator, generators)
  } else {
    const port = 20000 + (process.pid % 20000)
    const broker = await startBareAedes(port)
    baseline = await mqttBaseline(
      `mqtt://127.0.0.1:${port}`,
      ids,
      baselinePerDevice,
      window,
      generator,
      generators,
    )
    broker.kill('SIGTERM')
    await once(broker, 'exit')
  }
  log(`mqtt baseline: ${Math.round(baseline)} msg/s`)

  // 2. Store ceiling on the same engine.
  let ceiling = Number.NaN
  if (withLimits) {
    const ceilingSchema = databaseUrl ? await freshSchema(databaseUrl) : undefined
    ceiling = await storeCeiling(ceilingSchema?.url, devices, Math.min(total, 200_000) * 20)
    await ceilingSchema?.drop()
  }
  log(`store ceiling: ${Math.round(ceiling)} measurements/s`)

  // 3. The server (N replicas sharing the subscription), on a fresh database.
  const dataDirs: string[] = []
  const schema = databaseUrl ? await freshSchema(databaseUrl) : undefined
  const servers: ServerProcess[] = []
  for (let r = 0; r < replicas; r++) {
    const dataDir = mkdtempSync(join(tmpdir(), 'iot-meter-bench-'))
    dataDirs.push(dataDir)
    servers.push(
      await startServer({
        DATA_DIR: dataDir,
        MQTT_CLIENT_ID: `bench-server-${process.pid}-${r}`,
        ...(replicas > 1 ? { MQTT_SHARED_GROUP: `bench${process.pid}` } : {}),
        ...(schema ? { DATABASE_URL: schema.url } : {}),
        ...(mqttUrl ? { MQTT_URL: mqttUrl } : {}),
      }),
    )
  }
  const server = servers[0] as ServerProcess
  const pids = servers.map((s) => s.child.pid as number)
  const brokerUrl = mqttUrl ?? `mqtt://127.0.0.1:${server.brokerPort}`
  // A scrape whose keep-alive socket the server closed at that moment fails once ("fetch failed"
  // ended two soaks): tried again before the run gives up.
  const scrape = async (url: string, tries = 3): Promise<string> => {
    try {
      return await (await fetch(url)).text()
    } catch (error) {
      if (tries <= 1) throw error
      await new Promise((r) => setTimeout(r, 200))
      return scrape(url, tries - 1)
    }
  }
  const scrapeAll = () => Promise.all(servers.map((s) => scrape(`${s.baseUrl}/metrics`)))
  const storedNow = async () => sumOver(await scrapeAll(), 'ingest_messages_total')
  const sumOf = async (f: (pid: number) => Promise<number>) =>
    (await Promise.all(pids.map(f))).reduce((a, b) => a + b, 0)
  for (let i = 0; i < ids.length; i += 25) {
    // Signed in as the spawned server's admin (authentication is on); a refused registration would
    // only show later as every message rejected as unknown_device.
    const answers = await Promise.all(
      ids.slice(i, i + 25).map((device_id) =>
        serverFetch(`${server.baseUrl}/api/devices`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ device_id, device_name: device_id }),
        }),
      ),
    )
    const refused = answers.find((r) => !r.ok)
    if (refused) throw new Error(`registering a device: HTTP ${refused.status} ${await refused.text()}`)
  }
  const load = await startLoad(brokerUrl, ids, '', generator, generators)
  // Warm-up: --warmup datagrams per meter (seqs 0…), so caches, dedup windows and the database's
  // plans are warm as on a running server, and with enough of them (--warmup 20 for 1,000 meters)
  // the JIT's compiling too; the timed run continues the seqs and its latency counts only what it
  // published.
  // Samples are recent, as a live fleet's are: the last one a minute before the run starts (10 s of
  // sample time per datagram). --sample-age-days 30 makes every datagram late data for hours that
  // are due for compaction (TELEMETRY_COMPACT_AFTER_H, 24 by default), as all runs before
  // 2026-12-05 did: each batch then also checks and marks compacted hours.
  const sampleBase = Date.now() - (warmup + perDevice) * 10_000 - 60_000 - sampleAgeDays * 86_400_000
  await load.publish({ perDevice: warmup, window, sampleBase, firstSeq: 0 })
  while ((await storedNow()) < devices * warmup) await new Promise((r) => setTimeout(r, 100))
  await new Promise((r) => setTimeout(r, 1000))
  const warm = await scrapeAll()
  const storedBefore = sumOver(warm, 'ingest_messages_total')
  const rssBefore = await sumOf(rssMb)
  const cpuBefore = await sumOf(cpuSeconds)
  const usageBefore = await Promise.all(pids.map(processUsage))
  // Where the machine's CPU goes in the timed run: the server, the load generator(s), the broker,
  // the database, the rest (kernel, other jobs).
  const splitBefore = await cpuSplit(load)

  const started = performance.now()
  let lastLog = 0
  const onSent = (sent: number) => {
    if (performance.now() - lastLog > 2000) {
      lastLog = performance.now()
      log(`sent ${sent}/${total}`)
    }
  }
  const publishing = load.publish({ perDevice, window, rate, sampleBase, firstSeq: warmup, onSent })
  let stored = 0
  let lastProgress = 0
  const soak: { minute: number; rss_mb: number; p99_ms: number; stored: number }[] = []
  let minuteStart = warm
  let nextSample = started + 60_000
  while (stored < total) {
    // Each poll is a /metrics scrape the server pays for (~1 ms of its CPU): every 100 ms near the
    // end, for the run's duration, but at most once a second before (at 100 ms throughout, the
    // scrapes were 3-6 % of the server's CPU per message in the profile).
    const elapsed = performance.now() - started
    const remainingMs = stored > 0 ? ((total - stored) / stored) * elapsed : 400
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(100, remainingMs / 2))))
    const texts = await scrapeAll()
    stored = sumOver(texts, 'ingest_messages_total') - storedBefore
    if (performance.now() - lastProgress > 2000) {
      lastProgress = performance.now()
      log(`stored ${stored}/${total} (${Math.round(stored / ((performance.now() - started) / 1000))} msg/s)`)
    }
    if (soakMinutes > 0 && performance.now() >= nextSample) {
      nextSample += 60_000
      const sample = {
        minute: soak.length + 1,
        rss_mb: await sumOf(rssMb),
        p99_ms: Math.round(quantileOver(texts, 'ingest_lag_seconds', 0.99, minuteStart) * 1000),
        stored,
      }
      soak.push(sample)
      minuteStart = texts
      log(`soak minute ${sample.minute}: RSS ${sample.rss_mb} MB, p99 ${sample.p99_ms} ms`)
    }
    if (performance.now() - started > 900_000 + soakMinutes * 60_000)
      throw new Error(`only ${stored} of ${total} stored after the time allowed`)
  }
  const seconds = (performance.now() - started) / 1000
  const serverCpu = (await sumOf(cpuSeconds)) - cpuBefore
  const usageAfter = await Promise.all(pids.map(processUsage))
  const usageDelta = (key: 'user' | 'system' | 'minorFaults') =>
    usageAfter.reduce((n, u, i) => n + u[key] - (usageBefore[i]?.[key] ?? 0), 0)
  const splitAfter = await cpuSplit(load)
  const published = await publishing // paced: the achieved send rate; else the count
  const sendRate = published.rate
  const texts = await scrapeAll()
  // BENCH_METRICS_OUT=file: the (first) server's last /metrics scrape, for a closer look at a run.
  if (process.env.BENCH_METRICS_OUT) writeFileSync(process.env.BENCH_METRICS_OUT, texts[0] as string)
  const rss = await sumOf(rssMb)

  // 4. Forged ids: messages from distinct unregistered ids must cost a counter, not memory.
  let forgedGrowth: number | null = null
  if (forged > 0) {
    const [forger] = await connectAll(brokerUrl, ['forger'], 'bench-')
    const rejectedBefore = sumOver(texts, 'ingest_rejected_total')
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
    while (sumOver(await scrapeAll(), 'ingest_rejected_total') - rejectedBefore < forged)
      await new Promise((r) => setTimeout(r, 200))
    forgedGrowth = (await sumOf(rssMb)) - rss
    await forger?.endAsync()
  }
  await load.end()

  // 5. Storage per measurement: table and indexes.
  let bytes = 0
  if (schema) {
    const c = new pg.Client({ connectionString: schema.url })
    await c.connect()
    bytes = Number((await c.query(`select pg_total_relation_size('telemetry') as b`)).rows[0].b)
    await c.end()
  }
  for (const s of servers) s.child.kill('SIGTERM')
  await Promise.all(servers.map((s) => once(s.child, 'exit')))
  if (!schema) {
    const db = new PGlite(join(dataDirs[0] as string, 'pglite'))
    bytes = Number(
      (await db.query<{ b: number }>(`select pg_total_relation_size('telemetry') as b`)).rows[0]?.b,
    )
    await db.close()
  }
  await schema?.drop()
  await mosquitto?.stop()
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true })

  const measurements = total * 20
  const quantile = (q: number) => Math.round(quantileOver(texts, 'ingest_lag_seconds', q, warm) * 1000)
  const result = {
    mode,
    devices,
    generator,
    generators,
    replicas,
    encoding: args.encoding,
    warmup_per_device: warmup,
    sample_age_days: sampleAgeDays,
    msgs: total,
    ...(rate ? { target_rate: rate, send_rate: Math.round(sendRate as number) } : {}),
    measurements,
    seconds: Number(seconds.toFixed(2)),
    msgs_per_s: Math.round(total / seconds),
    measurements_per_s: Math.round(measurements / seconds),
    p50_ms: quantile(0.5),
    p99_ms: quantile(0.99),
    mqtt_baseline_msgs_per_s: Math.round(baseline),
    mqtt_ratio: Number((total / seconds / baseline).toFixed(3)),
    store_ceiling_measurements_per_s: Math.round(ceiling),
    store_ratio: Number((measurements / seconds / ceiling).toFixed(3)),
    bytes_per_measurement: Number((bytes / measurements).toFixed(2)),
    // CPU the server used per message (all its threads, all replicas): steadier than rates on a shared machine.
    server_cpu_us_per_msg: Math.round((serverCpu / total) * 1e6),
    server_cores: Number((serverCpu / seconds).toFixed(2)),
    // The server's CPU split into user and kernel mode, and its minor page faults, per message.
    server_user_us_per_msg: Math.round((usageDelta('user') / total) * 1e6),
    server_system_us_per_msg: Math.round((usageDelta('system') / total) * 1e6),
    server_page_faults_per_msg: Number((usageDelta('minorFaults') / total).toFixed(2)),
    cpu_us_per_msg: cpuPerMessage(splitBefore, splitAfter, serverCpu, total),
    rss_mb: rss,
    rss_before_mb: rssBefore,
    ...(soakMinutes > 0 ? { soak } : {}),
    forged_ids: forged,
    forged_rss_growth_mb: forgedGrowth,
    duplicates: sumOver(texts, 'ingest_duplicates_total'),
    gaps: sumOver(texts, 'ingest_gaps_total'),
    rejected: sumOver(texts, 'ingest_rejected_total'),
    // The servers' broker sessions that dropped (item 3 of issue 17), from their logs (last 200 kB).
    broker_reconnects: countInLogs(servers, '"msg":"mqtt offline'),
    keepalive_timeouts: countInLogs(servers, 'Keepalive timeout'),
    // Machine load at the end (1-minute average): wall-clock rates are the machine's, shared or not.
    loadavg_1m: Number(loadavg()[0]?.toFixed(2)),
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
