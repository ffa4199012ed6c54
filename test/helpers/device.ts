import { after, before } from 'node:test'
import mqtt, { type MqttClient } from 'mqtt'
import type { BinaryTelemetry } from '../../src/protocol/index.ts'
import { build, type TestApp } from './build.ts'
import { uniqueName } from './env.ts'

/** A real MQTT.js client playing a meter (MQTT 3.1.1: the embedded broker speaks nothing newer). */
export async function connectDevice(url: string, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId, clean: true, protocolVersion: 4, reconnectPeriod: 0 })
}

export const publishJson = (client: MqttClient, topic: string, body: unknown, qos: 0 | 1 | 2 = 2) =>
  client.publishAsync(topic, typeof body === 'string' ? body : JSON.stringify(body), { qos })

/**
 * A binary telemetry datagram (PROTOCOL.md) to encode: DC voltage and current at `t0`, voltage
 * alone 1 s later, sent 9 s after `t0`.
 */
export function twoSampleBinary(deviceId: string, t0: number, seq = 7): BinaryTelemetry {
  return {
    deviceId,
    seq,
    ts: t0 + 9000,
    t0,
    types: [
      { name: 'voltage_dc', unit: 'V' },
      { name: 'current_dc', unit: 'A' },
    ],
    samples: [
      { offsetMs: 0, values: [750, 300] },
      { offsetMs: 1000, values: [751, null] },
    ],
  }
}

/** A v2 DC telemetry datagram: `samples` seconds of voltage/current starting at `t0`. */
export function dcTelemetry(
  deviceId: string,
  seq: number,
  t0: number,
  samples = 10,
  volts = 750,
  amps = 300,
) {
  const measurements = []
  for (let i = 0; i < samples; i++) {
    const ts = new Date(t0 + i * 1000).toISOString()
    measurements.push(
      { ts, type: 'voltage_dc', val: volts, unit: 'V' },
      { ts, type: 'current_dc', val: amps, unit: 'A' },
    )
  }
  return {
    v: 2,
    device_id: deviceId,
    ts: new Date(t0 + samples * 1000).toISOString(),
    seq,
    msg_type: 'telemetry',
    measurements,
  }
}

export function hello(deviceId: string, seq: number, ts: number, fw = '1.2.3', uptime = 100) {
  return {
    v: 2,
    device_id: deviceId,
    ts: new Date(ts).toISOString(),
    seq,
    msg_type: 'hello',
    fw_version: fw,
    uptime_s: uptime,
    broker_connections: 1,
    buf_usage_pct: 3,
  }
}

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
      last = value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${String(last)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The value of one Prometheus sample on /metrics (0 when absent). */
export async function metricValue(t: TestApp, name: string, labels = ''): Promise<number> {
  const text = (await t.inject({ url: '/metrics' })).body
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `))
  return line ? Number(line.split(' ').pop()) : 0
}

export async function registerDevice(t: TestApp, deviceId: string, metadata: Record<string, unknown> = {}) {
  const res = await t.inject({
    method: 'POST',
    url: '/api/devices',
    payload: { device_id: deviceId, device_name: deviceId, metadata },
  })
  if (res.statusCode !== 201) throw new Error(`register ${deviceId}: ${res.statusCode} ${res.body}`)
  return res.json()
}

/**
 * The suite's app with one registered device: built before the suite's tests, closed after them.
 * Read `suite.t` and `suite.pk` inside the tests.
 */
export function suiteWithDevice(prefix: string): { t: TestApp; pk: number } {
  const suite = {} as { t: TestApp; pk: number }
  before(async () => {
    suite.t = await build()
    suite.pk = (await registerDevice(suite.t, uniqueName(prefix))).id
  })
  after(() => suite.t.close())
  return suite
}
