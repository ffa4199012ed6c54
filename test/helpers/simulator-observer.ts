import { randomUUID } from 'node:crypto'
import mqtt, { type MqttClient } from 'mqtt'
import { signCommand } from '../../src/modules/simulator/index.ts'
import { uniqueName } from './env.ts'

/** One message a real subscriber received from the broker. */
export interface Seen {
  broker: string
  deviceId: string
  /** The topic after `iot/{id}/`: telemetry, hello, status, command, command/ack, ota/status. */
  kind: string
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary payload fields
  body: any
  /** The payload's bytes (a binary telemetry datagram has no JSON body). */
  payload: Buffer
  retain: boolean
  at: number
}

/**
 * A real MQTT.js subscriber on `iot/{id}/#` of the given devices (QoS 1: subscribing at QoS 2
 * costs the broker for nothing), recording everything in arrival order.
 */
export class Observer {
  readonly seen: Seen[] = []
  private readonly waiters = new Set<() => void>()

  private constructor(
    readonly client: MqttClient,
    readonly broker: string,
  ) {
    client.on('message', (topic, payload, packet) => {
      const [, deviceId = '', ...rest] = topic.split('/')
      let body: unknown = null
      try {
        body = payload.length > 0 ? JSON.parse(payload.toString()) : null
      } catch {
        body = payload.toString()
      }
      this.seen.push({
        broker,
        deviceId,
        kind: rest.join('/'),
        body,
        payload,
        retain: packet.retain,
        at: Date.now(),
      })
      for (const wake of this.waiters) wake()
    })
  }

  static async open(url: string, deviceIds: string[]): Promise<Observer> {
    const client = await mqtt.connectAsync(url, {
      clientId: uniqueName('observer'),
      clean: true,
      protocolVersion: 4,
      reconnectPeriod: 0,
    })
    await client.subscribeAsync(
      deviceIds.map((id) => `iot/${id}/#`),
      { qos: 1 },
    )
    return new Observer(client, url)
  }

  of(deviceId: string, kind?: string): Seen[] {
    return this.seen.filter((s) => s.deviceId === deviceId && (kind === undefined || s.kind === kind))
  }

  /** Messages carrying a seq (everything but status and our own commands), in arrival order. */
  sequenced(deviceId: string): Seen[] {
    return this.of(deviceId).filter((s) => typeof s.body?.seq === 'number')
  }

  /** Resolves with the first truthy value of `probe`, checked now and on every new message. */
  until<T>(probe: () => T | undefined | false | null, what: string, timeoutMs = 8000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = probe()
        if (value === undefined || value === false || value === null) return false
        this.waiters.delete(check)
        clearTimeout(timer)
        resolve(value)
        return true
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        const tail = this.seen
          .slice(-8)
          .map((s) => `${s.deviceId} ${s.kind} ${JSON.stringify(s.body).slice(0, 160)}`)
        reject(new Error(`timed out waiting for ${what}; last messages:\n${tail.join('\n')}`))
      }, timeoutMs)
      if (!check()) this.waiters.add(check)
    })
  }

  async close(): Promise<void> {
    await this.client.endAsync()
  }
}

/** Publishes a command envelope (signed when a key is given) to `iot/{id}/command`; returns the envelope. */
export async function sendCommand(
  client: MqttClient,
  deviceId: string,
  cmd: string,
  params: Record<string, unknown> = {},
  options: { key?: string; tamper?: (e: Record<string, unknown>) => void; cmdId?: string } = {},
): Promise<Record<string, unknown>> {
  const now = Date.now()
  const envelope: Record<string, unknown> = {
    v: 2,
    device_id: deviceId,
    cmd_id: options.cmdId ?? randomUUID(),
    ts: new Date(now).toISOString(),
    exp: new Date(now + 300_000).toISOString(),
    cmd,
    params,
  }
  if (options.key) envelope.sig = signCommand(envelope, options.key)
  options.tamper?.(envelope)
  await client.publishAsync(`iot/${deviceId}/command`, JSON.stringify(envelope), { qos: 2 })
  return envelope
}

/**
 * Leaves a shared broker as it was: clears the retained statuses and ends the persistent sessions
 * of the simulated devices (a clean-session connect with the same client id discards them).
 */
export async function purgeDevices(url: string, deviceIds: string[]): Promise<void> {
  const admin = await mqtt.connectAsync(url, {
    clientId: uniqueName('purge'),
    clean: true,
    reconnectPeriod: 0,
  })
  await Promise.all(
    deviceIds.map((id) => admin.publishAsync(`iot/${id}/status`, '', { qos: 1, retain: true })),
  )
  await admin.endAsync()
  await Promise.all(
    deviceIds.map(async (id) => {
      const c = await mqtt.connectAsync(url, {
        clientId: id,
        clean: true,
        reconnectPeriod: 0,
        protocolVersion: 4,
      })
      await c.endAsync()
    }),
  )
}
