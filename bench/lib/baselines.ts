import { type ChildProcess, spawn } from 'node:child_process'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { PGlite } from '@electric-sql/pglite'
import mqtt from 'mqtt'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { startLoad } from './generators.ts'

/**
 * The MQTT limit of this machine: a bare MQTT.js subscriber (QoS 1) that only counts the same
 * datagrams, published the same way (QoS 2, same window) on the same kind of broker.
 */
export async function mqttBaseline(
  url: string,
  ids: string[],
  perDevice: number,
  window: number,
  generator: 'raw' | 'mqttjs',
  processes = 1,
): Promise<number> {
  const sub = await mqtt.connectAsync(url, {
    clientId: `bench-baseline-${process.pid}`,
    clean: true,
    protocolVersion: 4,
  })
  let received = 0
  sub.on('message', () => {
    received++
  })
  await sub.subscribeAsync('iot/+/telemetry', { qos: 1 })
  const load = await startLoad(url, ids, 'baseline-', generator, processes)
  const expected = ids.length * perDevice
  const started = performance.now()
  await load.publish({ perDevice, window, sampleBase: Date.now() - 86_400_000, firstSeq: 0 })
  while (received < expected && performance.now() - started < 120_000)
    await new Promise((r) => setTimeout(r, 20))
  const seconds = (performance.now() - started) / 1000
  await load.end()
  await sub.endAsync()
  return received / seconds
}

/** A bare aedes broker in its own process (the embedded mode's broker without the server). */
export async function startBareAedes(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./bare-aedes.ts', import.meta.url).pathname, String(port)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve())
    child.once('exit', () => reject(new Error('bare aedes exited')))
  })
  return child
}

function narrowRows(devices: number, measurements: number): string[] {
  const lines: string[] = []
  const base = Date.UTC(2026, 0, 1)
  for (let i = 0; i < measurements; i++) {
    const sample = i >> 1
    const device = sample % devices
    const type = i % 2
    const ts = new Date(base + Math.floor(sample / devices) * 1000).toISOString()
    lines.push(`${device}\t${type}\t${ts}\t${750 + (i % 13)}\n`)
  }
  return lines
}

const NARROW = `create table bench_narrow (device int not null, type smallint not null, ts timestamptz not null,
  value float8 not null, primary key (device, type, ts))`

/**
 * The store's ceiling: the same number of measurements as one narrow row each, COPY'd straight in
 * (PostgreSQL: COPY FROM STDIN; PGlite: its COPY from a blob), no pipeline, no conflict handling.
 */
export async function storeCeiling(
  databaseUrl: string | undefined,
  devices: number,
  measurements: number,
): Promise<number> {
  const lines = narrowRows(devices, measurements)
  if (databaseUrl) {
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    await client.query('drop table if exists bench_narrow')
    await client.query(NARROW)
    const started = performance.now()
    for (let i = 0; i < lines.length; i += 100_000) {
      await pipeline(
        Readable.from(lines.slice(i, i + 100_000)),
        client.query(copyFrom('copy bench_narrow from stdin')),
      )
    }
    const seconds = (performance.now() - started) / 1000
    await client.query('drop table bench_narrow')
    await client.end()
    return measurements / seconds
  }
  const db = new PGlite()
  await db.exec(NARROW)
  const started = performance.now()
  for (let i = 0; i < lines.length; i += 100_000) {
    const blob = new Blob(lines.slice(i, i + 100_000))
    await db.query(`copy bench_narrow from '/dev/blob'`, [], { blob })
  }
  const seconds = (performance.now() - started) / 1000
  await db.close()
  return measurements / seconds
}
