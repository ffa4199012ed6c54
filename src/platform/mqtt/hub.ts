import type { FastifyBaseLogger } from 'fastify'
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'

/** Called for every PUBLISH that arrives; `done` sends the broker its acknowledgement. */
export type MessageHandler = (link: BrokerLink, packet: IPublishPacket, done: (error?: Error) => void) => void

export interface BrokerLink {
  /** The broker URL without credentials, safe for logs and metric labels. */
  readonly name: string
  readonly client: MqttClient
}

export interface HubOptions {
  urls: string[]
  clientId: string
  protocolVersion: 4 | 5
  logger: FastifyBaseLogger
  /** Credentials of the connection (the embedded broker's process-local one); URLs may carry their own. */
  username?: string
  password?: string
}

/** How long a graceful end of a broker connection may take at shutdown. */
const CLOSE_GRACE_MS = 5000

/**
 * MQTT.js traces every packet through the `debug` package; switched off, each call still builds
 * its arguments (3-4 % of what the ingest allocated). Silent unless DEBUG asks for traces.
 */
const clientTrace: Pick<IClientOptions, 'log'> = process.env.DEBUG ? {} : { log: () => undefined }

/** A broker URL fit for logs and screens: user and password removed. */
export const withoutCredentials = (url: string) => url.replace(/\/\/[^@/]*@/, '//')

/**
 * One persistent MQTT.js connection per configured broker. The client reconnects by itself;
 * the hub only fans publishes out to every broker and routes incoming messages to one handler.
 */
export class MqttHub {
  readonly links: BrokerLink[]
  /**
   * Unset until the ingest installs its handler. A persistent session gets its queued messages
   * right after CONNACK, before the app has finished starting: they wait here unacknowledged
   * (MQTT.js hands over the next one only after the callback), never acknowledged and dropped.
   */
  private handler: MessageHandler | undefined
  private waiting: [BrokerLink, IPublishPacket, (error?: Error) => void][] = []

  constructor(private readonly options: HubOptions) {
    this.links = options.urls.map((url) => this.connect(url))
  }

  private connect(url: string): BrokerLink {
    const name = withoutCredentials(url)
    const clientOptions: IClientOptions = {
      clientId: this.options.clientId,
      clean: false,
      keepalive: 30,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      protocolVersion: this.options.protocolVersion,
      ...clientTrace,
      ...(this.options.username !== undefined
        ? { username: this.options.username, password: this.options.password }
        : {}),
      // A persistent session needs an expiry on MQTT 5, or the broker drops it on disconnect.
      properties: this.options.protocolVersion === 5 ? { sessionExpiryInterval: 3600 } : undefined,
    }
    const client = mqtt.connect(url, clientOptions)
    const link: BrokerLink = { name, client }
    const log = this.options.logger.child({ broker: name })
    client.on('connect', () => log.info('mqtt connected'))
    client.on('offline', () => log.warn('mqtt offline, reconnecting'))
    client.on('error', (error) => log.warn({ err: error }, 'mqtt error'))
    client.handleMessage = (packet, callback) => this.dispatch(link, packet, (error) => callback(error))
    return link
  }

  private dispatch(link: BrokerLink, packet: IPublishPacket, done: (error?: Error) => void): void {
    if (!this.handler) {
      this.waiting.push([link, packet, done])
      return
    }
    try {
      this.handler(link, packet, done)
    } catch (error) {
      this.options.logger.error({ err: error, broker: link.name }, 'mqtt message handler threw')
      done()
    }
  }

  /** Installs the handler of incoming messages (the ingest module does) and hands it what waited. */
  onMessage(handler: MessageHandler): void {
    this.handler = handler
    const waiting = this.waiting
    this.waiting = []
    for (const [link, packet, done] of waiting) this.dispatch(link, packet, done)
  }

  connectedCount(): number {
    return this.links.filter((l) => l.client.connected).length
  }

  /** Publishes to every connected broker; resolves with the brokers that acknowledged it. */
  async publish(
    topic: string,
    payload: string | Buffer,
    options: { qos: 0 | 1 | 2; retain?: boolean },
  ): Promise<{ delivered: string[]; failed: string[] }> {
    const delivered: string[] = []
    const failed: string[] = []
    await Promise.all(
      this.links.map(async (link) => {
        if (!link.client.connected) {
          failed.push(link.name)
          return
        }
        try {
          await link.client.publishAsync(topic, payload, options)
          delivered.push(link.name)
        } catch {
          failed.push(link.name)
        }
      }),
    )
    return { delivered, failed }
  }

  /**
   * Ends every connection: gracefully when connected, at once otherwise (queued packets would wait
   * forever). A graceful end waits for the in-flight publishes; a connection that died meanwhile
   * would make it wait forever with nothing left to wake the process (a close that never returns),
   * so after CLOSE_GRACE_MS the socket is destroyed and the close goes on.
   */
  async close(): Promise<void> {
    await Promise.all(
      this.links.map(async (link) => {
        let timer: NodeJS.Timeout | undefined
        const late = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            this.options.logger.warn(
              { broker: link.name },
              'mqtt: graceful end timed out; closing the socket',
            )
            link.client.stream?.destroy()
            resolve()
          }, CLOSE_GRACE_MS)
        })
        const ended = link.client.endAsync(!link.client.connected).catch(() => undefined)
        await Promise.race([ended, late])
        clearTimeout(timer)
      }),
    )
  }
}
