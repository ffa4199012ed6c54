import { createServer } from 'node:net'
import mqtt, { type MqttClient } from 'mqtt'

/** A meter's side of the command topic: a real MQTT.js client subscribed to `iot/{id}/command`. */
export interface Meter {
  client: MqttClient
  /** The next command envelope that arrives (or rejects after timeoutMs). */
  next(timeoutMs?: number): Promise<Record<string, unknown>>
  close(): Promise<void>
}

export async function connectMeter(url: string, deviceId: string, clean = true): Promise<Meter> {
  const queue: Record<string, unknown>[] = []
  const waiters: ((message: Record<string, unknown>) => void)[] = []
  const client = mqtt.connect(url, { clientId: deviceId, clean, protocolVersion: 4, reconnectPeriod: 0 })
  // Listening before the connection is up: a persistent session delivers queued messages at once.
  client.on('message', (_topic, payload) => {
    const message = JSON.parse(payload.toString()) as Record<string, unknown>
    const waiter = waiters.shift()
    if (waiter) waiter(message)
    else queue.push(message)
  })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  await client.subscribeAsync(`iot/${deviceId}/command`, { qos: 1 })
  return {
    client,
    next: (timeoutMs = 5000) => {
      const queued = queue.shift()
      if (queued) return Promise.resolve(queued)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no command for ${deviceId} within ${timeoutMs} ms`)),
          timeoutMs,
        )
        waiters.push((message) => {
          clearTimeout(timer)
          resolve(message)
        })
      })
    },
    close: () => client.endAsync(),
  }
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (!address || typeof address !== 'object') throw new Error('no port')
  return address.port
}
