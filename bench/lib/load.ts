import mqtt, { type MqttClient } from 'mqtt'

/** A DC datagram of `samples` × (voltage_dc, current_dc): 20 measurements, ~1.6 KB, as meters send. */
export function datagram(deviceId: string, seq: number, sampleBase: number, samples = 10): string {
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

/**
 * Publishes `perDevice` datagrams from every client at QoS 2, each client keeping at most `window`
 * unacknowledged (Mosquitto cuts off a 3.1.1 publisher beyond its max_inflight_messages).
 */
export async function publishAll(
  clients: MqttClient[],
  ids: string[],
  perDevice: number,
  window: number,
  sampleBase: number,
  onProgress?: (sent: number) => void,
): Promise<number> {
  let sent = 0
  await Promise.all(
    clients.map(async (client, i) => {
      const id = ids[i] as string
      let seq = 0
      while (seq < perDevice) {
        const burst: Promise<unknown>[] = []
        for (let k = 0; k < window && seq < perDevice; k++, seq++) {
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

/** Resident memory of a process in MB (Linux /proc). */
export async function rssMb(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 1024)
}

/** p-quantile from a Prometheus histogram's cumulative buckets, interpolated linearly within a bucket. */
export function histogramQuantile(text: string, name: string, q: number): number {
  const buckets: { le: number; count: number }[] = []
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`).exec(line)
    if (m)
      buckets.push({ le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), count: Number(m[2]) })
  }
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
