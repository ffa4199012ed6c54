import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { type FastifyServerOptions, LogController } from 'fastify'
import { prettyStream } from './pretty-log.ts'

/** Paths of secrets that must never reach a log line. */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'password',
  '*.password',
  'token',
  '*.token',
  '*.secret',
  'secret',
  'DATABASE_URL',
  'config.DATABASE_URL',
]

/** Query parameters whose values are never logged (a token sent where it does not belong, too). */
const SECRET_PARAM = /^(token|access_token|api_key|apikey|key|secret|password|sig|auth|authorization)$/i

/** The URL with the values of secret-looking query parameters replaced (issue 16 row 8). */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = eq < 0 ? pair : pair.slice(0, eq)
      let decoded = name
      try {
        decoded = decodeURIComponent(name)
      } catch {}
      return eq >= 0 && SECRET_PARAM.test(decoded) ? `${name}=[redacted]` : pair
    })
  return `${url.slice(0, q)}?${params.join('&')}`
}

interface LoggedRequest {
  method?: string
  url?: string
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}

export type LogFormat = 'pretty' | 'json'

/** LOG_FORMAT, or pretty when stdout is a terminal (a person reads it) and JSON otherwise (a collector does). */
export function logFormat(configured: string | undefined, isTTY = process.stdout.isTTY === true): LogFormat {
  if (configured === 'pretty' || configured === 'json') return configured
  return isTTY ? 'pretty' : 'json'
}

/** pino options: JSON lines (or pretty ones), secrets redacted, a request id on every request log. */
export function loggerOptions(level: string, format: LogFormat = 'json'): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { service: 'iot-meter' },
    serializers: {
      // Fastify's own fields, with the URL's secret query parameters redacted.
      req: (req: LoggedRequest) => ({
        method: req.method,
        url: req.url === undefined ? undefined : redactUrl(req.url),
        host: req.host,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
    },
    ...(format === 'pretty' ? { stream: prettyStream() } : {}),
  }
}

type Request = Parameters<LogController['incomingRequest']>[0]
type Reply = Parameters<LogController['requestCompleted']>[2]

/**
 * Request logs at info for what changes something or fails; reads (the dashboard's polling every few
 * seconds, its static files, /docs, probes) at debug, so an open dashboard does not drown the log.
 */
export class QuietReadsLogController extends LogController {
  private static isRead(request: Request) {
    return request.method === 'GET' || request.method === 'HEAD'
  }

  override incomingRequest(request: Request, reply: Reply): void {
    if (!QuietReadsLogController.isRead(request)) super.incomingRequest(request, reply)
    else if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(error: Error | null | undefined, request: Request, reply: Reply): void {
    if (error || reply.statusCode >= 400 || !QuietReadsLogController.isRead(request)) {
      super.requestCompleted(error, request, reply)
    } else if (!this.isLogDisabled(request)) {
      reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
    }
  }
}

/** Honour a caller's X-Request-Id when it is sane, otherwise mint one. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID()
}
