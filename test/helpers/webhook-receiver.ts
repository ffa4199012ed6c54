import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { freePort } from './mosquitto.ts'

export interface Received {
  headers: IncomingHttpHeaders
  body: string
  status: number
}

/**
 * A real HTTP receiver on a fixed port: `down()` closes it (connections are refused, as with a
 * receiver that is off), `up()` listens again on the same port. `answer` decides each response's
 * status (default 204); `delayMs` holds each answer (a slow receiver).
 */
export class WebhookReceiver {
  readonly received: Received[] = []
  answer: (headers: IncomingHttpHeaders, body: string) => number = () => 204
  delayMs = 0
  private server: Server | undefined

  private constructor(readonly port: number) {}

  static async start(port?: number): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(port ?? (await freePort()))
    await receiver.up()
    return receiver
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`
  }

  /** Delivered ones: answered 2xx. */
  get accepted(): Received[] {
    return this.received.filter((r) => r.status < 300)
  }

  async up(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        const status = this.answer(req.headers, body)
        setTimeout(() => {
          this.received.push({ headers: req.headers, body, status })
          res.writeHead(status).end()
        }, this.delayMs)
      })
    })
    server.listen(this.port, '127.0.0.1')
    await once(server, 'listening')
    this.server = server
  }

  async down(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = undefined
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  }
}
