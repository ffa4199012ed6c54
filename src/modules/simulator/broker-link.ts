import type { FastifyBaseLogger } from 'fastify'
import mqtt, { type MqttClient } from 'mqtt'
import { MESSAGE_KINDS, topicOf } from '../../protocol/index.ts'
import type { Outgoing, PublishedType } from './messages.ts'

/**
 * Unacknowledged QoS 1/2 publishes per connection. Mosquitto's max_inflight_messages 20
 * disconnects a 3.1.1 publisher that goes past it; half of that leaves room for the status.
 */
export const MAX_INFLIGHT = 10

export interface LinkEvents {
  command: (payload: Buffer) => void
  connectionChanged: () => void
  published: (type: PublishedType) => void
  acked: (type: PublishedType) => void
}

export interface LinkOptions {
  url: string
  clientId: string
  /** Sent with username = client id (the embedded broker's token auth); none = anonymous. */
  password?: string
  /** The offline status registered as the will (QoS 1, retained). */
  will: () => Outgoing
  /** The online status published first after every connect. */
  online: () => Outgoing
  capacity: number
  events: LinkEvents
  log: FastifyBaseLogger
}

/**
 * One device's connection to one broker: its own MQTT.js client (client id = device id, persistent
 * session, keep-alive 15 s, MQTT 3.1.1 — the one version aedes and Mosquitto both speak), a will,
 * the command subscription, and a bounded publish queue that keeps at most MAX_INFLIGHT messages
 * unacknowledged. When the queue is full the oldest message is dropped (the server sees a gap).
 */
export class BrokerLink {
  readonly client: MqttClient
  overflowed = 0
  failed = 0
  private queue: Outgoing[] = []
  private inflight = 0
  private closed = false
  private idleWaiters: (() => void)[] = []

  constructor(
    readonly url: string,
    private readonly options: LinkOptions,
  ) {
    this.client = mqtt.connect(url, {
      clientId: options.clientId,
      clean: false,
      keepalive: 15,
      protocolVersion: 4,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      will: this.willPacket(),
      ...(options.password !== undefined ? { username: options.clientId, password: options.password } : {}),
    })
    const { events, log } = options
    // Queued by MQTT.js until connected; it resubscribes by itself when the session is gone.
    this.client.subscribe(
      topicOf(options.clientId, 'command'),
      { qos: MESSAGE_KINDS.command.qos },
      (error) => {
        if (error && !this.closed) log.warn({ err: error, broker: url }, 'command subscription failed')
      },
    )
    this.client.on('connect', () => {
      this.queue.unshift(options.online())
      events.connectionChanged()
      this.pump()
    })
    this.client.on('close', () => events.connectionChanged())
    // The will is fixed at CONNECT time: give the next attempt a fresh timestamp.
    this.client.on('reconnect', () => {
      this.client.options.will = this.willPacket()
    })
    this.client.on('error', (error) => log.debug({ err: error, broker: url }, 'simulated device mqtt error'))
    this.client.on('message', (_topic, payload) => events.command(payload))
  }

  get connected(): boolean {
    return this.client.connected
  }

  /** Share of the publish buffer in use, 0–100 (hello's buf_usage_pct). */
  get usagePct(): number {
    return Math.min(100, Math.round((100 * (this.queue.length + this.inflight)) / this.options.capacity))
  }

  enqueue(message: Outgoing): void {
    if (this.closed) return
    if (this.queue.length >= this.options.capacity) {
      this.queue.shift()
      this.overflowed++
    }
    this.queue.push(message)
    this.pump()
  }

  /** Resolves once everything queued is acknowledged, or after timeoutMs (a broker that is down). */
  drain(timeoutMs: number): Promise<void> {
    if (this.idle()) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.idleWaiters.push(done)
    })
  }

  /**
   * Disconnects: cleanly (DISCONNECT, the broker discards the will) when everything was acknowledged;
   * otherwise the socket is dropped (MQTT.js would wait for the acks forever) and the will fires.
   * Unsent messages are dropped. Call drain() first.
   */
  async close(): Promise<void> {
    this.closed = true
    this.queue = []
    const force = !this.client.connected || this.inflight > 0
    await this.client.endAsync(force).catch(() => undefined)
    this.notifyIdle()
  }

  private willPacket() {
    const will = this.options.will()
    return { topic: will.topic, payload: Buffer.from(will.payload), qos: will.qos, retain: will.retain }
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.inflight === 0
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  private pump(): void {
    const { events } = this.options
    while (!this.closed && this.client.connected && this.inflight < MAX_INFLIGHT) {
      const message = this.queue.shift()
      if (!message) break
      this.inflight++
      this.client.publish(
        message.topic,
        message.payload,
        { qos: message.qos, retain: message.retain },
        (error) => {
          this.inflight--
          if (error) this.failed++
          else events.acked(message.type)
          this.pump()
          if (this.idle()) this.notifyIdle()
        },
      )
      events.published(message.type)
    }
  }
}
