import mqtt, { type MqttClient } from 'mqtt'
import { encodeBinaryTelemetry } from '../../src/protocol/index.ts'
import { RawPublisher } from './raw-publisher.ts'

/**
 * A DC datagram of `samples` × (voltage_dc, current_dc): 20 measurements, as meters send: JSON
 * (~1.6 KB), or the binary encoding (~240 bytes) when BENCH_ENCODING=binary (bench:ingest
 * --encoding binary sets it, so the generator processes it starts send the same).
 */
export function datagram(deviceId: string, seq: number, sampleBase: number, samples = 10): string | Buffer {
  return process.env.BENCH_ENCODING === 'binary'
    ? binaryDatagram(deviceId, seq, sampleBase, samples)
    : jsonDatagram(deviceId, seq, sampleBase, samples)
}

function binaryDatagram(deviceId: string, seq: number, sampleBase: number, samples: number): Buffer {
  return encodeBinaryTelemetry({
    deviceId,
    seq,
    ts: Date.now(),
    t0: sampleBase,
    types: [
      { name: 'voltage_dc', unit: 'V' },
      { name: 'current_dc', unit: 'A' },
    ],
    samples: Array.from({ length: samples }, (_, i) => ({
      offsetMs: i * 1000,
      values: [750 + (i % 7), 300 - (i % 5)],
    })),
  })
}

export function jsonDatagram(deviceId: string, seq: number, sampleBase: number, samples = 10): string {
  const measurements = []
  for (let i = 0; i < samples; i++) {
    const ts = new Date(sampleBase + i * 1000).toISOString()
    measurements.push(
      { ts, type: 'voltage_dc', val: 750 + (i % 7), unit: 'V' },
      { ts, type: 'current_dc', val: 300 - (i % 5), unit: 'A' },
    )
  }
  // The envelope ts is the publish time, so the server's lag histogram measures publish → stored.
  return JSON.stringify({
    v: 2,
    device_id: deviceId,
    ts: new Date().toISOString(),
    seq,
    msg_type: 'telemetry',
    measurements,
  })
}

export async function connectAll(url: string, ids: string[], prefix: string): Promise<MqttClient[]> {
  const clients: MqttClient[] = []
  for (let i = 0; i < ids.length; i += 100) {
    const chunk = ids.slice(i, i + 100)
    clients.push(
      ...(await Promise.all(
        chunk.map((id) =>
          mqtt.connectAsync(url, {
            clientId: `${prefix}${id}`,
            clean: true,
            protocolVersion: 4,
            reconnectPeriod: 1000,
            keepalive: 60,
          }),
        ),
      )),
    )
  }
  return clients
}

/** What the load generator needs of a meter's connection (MQTT.js or the raw publisher). */
export interface Publisher {
  publishAsync(topic: string, payload: string | Buffer, options: { qos: 2 }): Promise<unknown>
  endAsync(): Promise<unknown>
}

/**
 * The meters' connections: `raw` (default) speaks MQTT 3.1.1 QoS 2 on a plain socket at a fraction
 * of MQTT.js's CPU, which on a shared 2-core machine is CPU taken from the system under test;
 * `mqttjs` uses the library, as earlier runs did.
 */
export async function connectPublishers(
  url: string,
  ids: string[],
  prefix: string,
  kind: 'raw' | 'mqttjs',
): Promise<Publisher[]> {
  if (kind === 'mqttjs') return connectAll(url, ids, prefix)
  const publishers: Publisher[] = []
  for (let i = 0; i < ids.length; i += 100) {
    const chunk = ids.slice(i, i + 100)
    publishers.push(...(await Promise.all(chunk.map((id) => RawPublisher.connect(url, `${prefix}${id}`)))))
  }
  return publishers
}

/**
 * Publishes `perDevice` datagrams from every client at QoS 2, each client keeping at most `window`
 * unacknowledged (Mosquitto cuts off a 3.1.1 publisher beyond its max_inflight_messages).
 */
export async function publishAll(
  clients: Publisher[],
  ids: string[],
  perDevice: number,
  window: number,
  sampleBase: number,
  onProgress?: (sent: number) => void,
  firstSeq = 0,
): Promise<number> {
  let sent = 0
  const end = firstSeq + perDevice
  await Promise.all(
    clients.map(async (client, i) => {
      const id = ids[i] as string
      let seq = firstSeq
      while (seq < end) {
        const burst: Promise<unknown>[] = []
        for (let k = 0; k < window && seq < end; k++, seq++) {
          burst.push(
            client.publishAsync(`iot/${id}/telemetry`, datagram(id, seq, sampleBase + seq * 10_000), {
              qos: 2,
            }),
          )
        }
        await Promise.all(burst)
        sent += burst.length
        onProgress?.(sent)
      }
    }),
  )
  return sent
}

/**
 * Publishes `perDevice` datagrams from every client at QoS 2 at a fixed total `rate` (msg/s),
 * spread evenly over the clients and over time, so latency is measured below saturation.
 * Resolves with the achieved send rate (lower than asked when the load generator falls behind).
 */
export async function publishPaced(
  clients: Publisher[],
  ids: string[],
  perDevice: number,
  rate: number,
  sampleBase: number,
  onProgress?: (sent: number) => void,
  firstSeq = 0,
): Promise<number> {
  const n = clients.length
  const total = n * perDevice
  const started = performance.now()
  let scheduled = 0
  let sent = 0
  // One timer for all meters (not one per meter): message j is meter j % n's (j / n)-th, due at
  // j / rate s, so each meter publishes every n / rate s, the meters evenly staggered.
  return new Promise((resolve, reject) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1)
      for (; scheduled < due; scheduled++) {
        const i = scheduled % n
        const seq = firstSeq + Math.floor(scheduled / n)
        const id = ids[i] as string
        const payload = datagram(id, seq, sampleBase + seq * 10_000)
        ;(clients[i] as Publisher).publishAsync(`iot/${id}/telemetry`, payload, { qos: 2 }).then(() => {
          sent++
          onProgress?.(sent)
          if (sent === total) resolve(total / ((performance.now() - started) / 1000))
        }, reject)
      }
      if (scheduled < total) setTimeout(tick, 2)
    }
    tick()
  })
}

/** CPU seconds (user + system, all threads) a process has used so far (Linux /proc). */
export async function cpuSeconds(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // clock ticks: 100 per second on Linux
}

/**
 * What a process has used so far (Linux /proc): CPU seconds in user and kernel mode, and minor page
 * faults (first touches of memory the allocator got fresh from the kernel: on a VM each costs
 * microseconds of CPU, and their count does not depend on how loaded the machine is).
 */
export async function processUsage(
  pid: number,
): Promise<{ user: number; system: number; minorFaults: number }> {
  const { readFile } = await import('node:fs/promises')
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100, minorFaults: Number(fields[7]) }
}

/** CPU seconds used so far by all processes with each of these command names (Linux /proc). */
export async function cpuSecondsByCommand(names: string[]): Promise<Record<string, number>> {
  const { readdir, readFile } = await import('node:fs/promises')
  const totals: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]))
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const comm = (await readFile(`/proc/${entry}/comm`, 'utf8')).trim()
      if (comm in totals) totals[comm] = (totals[comm] as number) + (await cpuSeconds(Number(entry)))
    } catch {
      // The process ended meanwhile.
    }
  }
  return totals
}

/** CPU seconds the whole machine spent busy so far, all cores (Linux /proc/stat). */
export async function machineCpuSeconds(): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] as string
  // cpu user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number)
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / 100
}

/** Resident memory of a process in MB (Linux /proc). */
export async function rssMb(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 1024)
}

function histogramBuckets(text: string, name: string): { le: number; count: number }[] {
  const buckets: { le: number; count: number }[] = []
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`).exec(line)
    if (m)
      buckets.push({ le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), count: Number(m[2]) })
  }
  return buckets
}

/**
 * p-quantile from a Prometheus histogram's cumulative buckets, interpolated linearly within a
 * bucket; with `since`, of the observations made after that scrape only.
 */
export function histogramQuantile(text: string, name: string, q: number, since?: string): number {
  const before = since ? histogramBuckets(since, name) : []
  const buckets = histogramBuckets(text, name).map((b, i) => ({
    le: b.le,
    count: b.count - (before[i]?.count ?? 0),
  }))
  const total = buckets[buckets.length - 1]?.count ?? 0
  if (total === 0) return Number.NaN
  const rank = q * total
  let prev = { le: 0, count: 0 }
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prev.le
      const within = b.count - prev.count
      return prev.le + ((b.le - prev.le) * (rank - prev.count)) / (within || 1)
    }
    prev = b
  }
  return prev.le
}

export const metricSum = (text: string, name: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
