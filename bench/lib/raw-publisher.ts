import { connect, type Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'

/**
 * One meter's MQTT 3.1.1 connection for the load generator, without a client library: CONNECT,
 * then QoS 2 publishes (PUBLISH → PUBREC → PUBREL → PUBCOMP) and keep-alive pings. The broker and
 * the server see exactly what a device sends; the generator spends a fraction of MQTT.js's CPU
 * (which, on a 2-core machine, is CPU the system under test does not get): packets written in one
 * tick leave in one write.
 */
export class RawPublisher {
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 })
  /** QoS 2 flows in progress, by packet id: resolved at PUBCOMP. */
  private readonly flows = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
  private nextId = 1
  private corked = false
  private closed: Error | undefined
  private readonly ping: NodeJS.Timeout

  private constructor(private readonly socket: Socket) {
    this.parser.on('packet', (packet) => this.onPacket(packet))
    this.parser.on('error', (error) => socket.destroy(error))
    socket.on('data', (chunk) => this.parser.parse(chunk))
    socket.on('close', () => this.fail(this.closed ?? new Error('connection closed')))
    socket.on('error', (error) => {
      this.closed = error
    })
    this.ping = setInterval(() => this.send({ cmd: 'pingreq' }), 30_000).unref()
  }

  /** Connects and waits for a CONNACK that accepts the session. */
  static connect(url: string, clientId: string): Promise<RawPublisher> {
    const { hostname, port } = new URL(url)
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port || 1883) })
      socket.setNoDelay(true)
      const publisher = new RawPublisher(socket)
      publisher.onConnack = (returnCode) => {
        if (returnCode === 0) resolve(publisher)
        else reject(new Error(`CONNACK ${returnCode} for ${clientId}`))
      }
      socket.once('error', reject)
      socket.once('connect', () =>
        publisher.send({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId,
          clean: true,
          keepalive: 60,
        }),
      )
    })
  }

  private onConnack: (returnCode: number) => void = () => {}

  /** Publishes at QoS 2; resolves when the broker has completed the flow (PUBCOMP). */
  publishAsync(topic: string, payload: string | Buffer, _options?: { qos: 2 }): Promise<void> {
    if (this.closed) return Promise.reject(this.closed)
    const messageId = this.takeId()
    return new Promise((resolve, reject) => {
      this.flows.set(messageId, { resolve, reject })
      this.send({ cmd: 'publish', topic, payload, qos: 2, messageId, retain: false, dup: false })
    })
  }

  async endAsync(): Promise<void> {
    clearInterval(this.ping)
    if (this.socket.destroyed) return
    this.closed = new Error('ended')
    await new Promise<void>((resolve) => this.socket.end(mqttPacket.generate({ cmd: 'disconnect' }), resolve))
    this.socket.destroy()
  }

  private takeId(): number {
    // Ids 1…65535; one still in a flow is skipped (a window never holds that many).
    while (this.flows.has(this.nextId)) this.nextId = (this.nextId % 65535) + 1
    const id = this.nextId
    this.nextId = (this.nextId % 65535) + 1
    return id
  }

  private onPacket(packet: Packet): void {
    switch (packet.cmd) {
      case 'connack':
        this.onConnack(packet.returnCode ?? 0)
        break
      case 'pubrec':
        this.send({ cmd: 'pubrel', messageId: packet.messageId as number })
        break
      case 'pubcomp': {
        const flow = this.flows.get(packet.messageId as number)
        this.flows.delete(packet.messageId as number)
        flow?.resolve()
        break
      }
      default:
        break // pingresp
    }
  }

  /** Writes a packet; what is written in one tick leaves in one write. */
  private send(packet: Packet): void {
    if (this.socket.destroyed) return
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      process.nextTick(() => {
        this.corked = false
        this.socket.uncork()
      })
    }
    this.socket.write(mqttPacket.generate(packet))
  }

  private fail(error: Error): void {
    clearInterval(this.ping)
    for (const flow of this.flows.values()) flow.reject(error)
    this.flows.clear()
  }
}
