import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { join } from 'node:path'
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

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })

/**
 * A Mosquitto of the test's own on `port`, with persistence under `dir`: stopping and starting it
 * again keeps the sessions of offline clients and the messages queued for them.
 */
export async function startMosquitto(port: number, dir: string): Promise<{ stop: () => Promise<void> }> {
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'user root',
      '',
    ].join('\n'),
  )
  const child: ChildProcess = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' })
  const exited = once(child, 'exit')
  for (let i = 0; i < 100 && !(await accepts(port)); i++) {
    if (child.exitCode !== null) throw new Error('mosquitto exited at start')
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await exited
      }
    },
  }
}
