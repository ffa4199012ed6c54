import mqtt, { type MqttClient } from 'mqtt'
import { waitFor } from './device.ts'
import { type ServerProcess, serverFetch } from './process.ts'

/** Helpers of the fault and scale-out tests: they talk to server child processes over HTTP only. */

export async function registerOverHttp(baseUrl: string, ids: string[]): Promise<void> {
  for (const device_id of ids) {
    const res = await serverFetch(`${baseUrl}/api/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id, device_name: device_id }),
    })
    if (res.status !== 201 && res.status !== 409) throw new Error(`register ${device_id}: ${res.status}`)
  }
}

export async function readyz(baseUrl: string): Promise<{ status: number; checks: Record<string, string> }> {
  const res = await serverFetch(`${baseUrl}/readyz`)
  const body = (await res.json()) as { checks: Record<string, string> }
  return { status: res.status, checks: body.checks }
}

/** Waits until every broker connection of the server is up, then lets the subscriptions settle. */
export async function waitMqttReady(baseUrl: string, timeoutMs = 20000): Promise<void> {
  await waitFor(async () => (await readyz(baseUrl)).checks.mqtt === 'ok', timeoutMs, 'mqtt ready')
  await new Promise((r) => setTimeout(r, 500))
}

/** One sample of the server's /metrics (summed over label sets when `labels` is omitted). */
export async function scrape(baseUrl: string, name: string): Promise<number> {
  const text = await (await serverFetch(`${baseUrl}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop())
  }
  return sum
}

/** Stored voltage_dc points of each device; fails when a device holds one time twice. */
export async function countPoints(baseUrl: string, ids: string[], since: number): Promise<number> {
  const start = new Date(since - 60_000).toISOString()
  let total = 0
  for (const id of ids) {
    const res = await serverFetch(
      `${baseUrl}/api/devices/${id}/metrics?metric=voltage_dc&start=${start}&stop=now()&limit=100000`,
    )
    if (res.status !== 200) throw new Error(`metrics of ${id}: ${res.status} ${await res.text()}`)
    const points = (await res.json()) as { time: string }[]
    if (new Set(points.map((p) => p.time)).size !== points.length) throw new Error(`a time twice for ${id}`)
    total += points.length
  }
  return total
}

/**
 * A meter's MQTT 3.1.1 connection that does not reconnect by itself. With `reconnect` it also
 * keeps a persistent session (clean: false) as PROTOCOL.md asks of meters: a QoS 2 message whose
 * PUBREC arrived before the broker went down is completed by a PUBREL after the reconnect, which
 * only finds the message again in the same session.
 */
export function meterClient(url: string, clientId: string, reconnect = false): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    clientId,
    clean: !reconnect,
    protocolVersion: 4,
    reconnectPeriod: reconnect ? 300 : 0,
    connectTimeout: 5000,
  })
}

/** Resident set size of a process in MiB (Linux /proc), or NaN. */
export async function rssMiB(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN
  const { readFile } = await import('node:fs/promises')
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = status.match(/VmRSS:\s+(\d+) kB/)
    return m ? Number(m[1]) / 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

export async function stopServer(server: ServerProcess): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  server.child.kill('SIGTERM')
  await server.exited
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
