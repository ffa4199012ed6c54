import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import type { AuthConfig } from './auth-config.ts'
import { type Limiter, limitKey } from './guard.ts'

/** API-friendly and fit for a same-origin dashboard and the API reference (/docs): their own scripts only, nothing framed, no plugins. */
const directives = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
}

/** Security headers, CORS (only when CORS_ORIGINS is set) and the rate limiter the guard calls. */
export async function registerHardening(
  app: FastifyInstance,
  config: AuthConfig,
): Promise<Limiter | undefined> {
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives },
    // Browsers ignore HSTS over plain HTTP; behind TLS it pins this host only, not its subdomains.
    strictTransportSecurity: { maxAge: 15_552_000, includeSubDomains: false },
  })
  const origins = config.CORS_ORIGINS?.split(',')
    .map((o) => o.trim())
    .filter(Boolean)
  if (origins && origins.length > 0) {
    await app.register(cors, {
      origin: origins.includes('*') ? '*' : origins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
      exposedHeaders: [
        'x-request-id',
        'retry-after',
        'x-ratelimit-limit',
        'x-ratelimit-remaining',
        'x-ratelimit-reset',
      ],
      credentials: false,
      maxAge: 600,
    })
  }
  if (config.RATE_LIMIT_MAX === 0) return undefined
  await app.register(rateLimit, {
    global: false,
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW_MS,
    keyGenerator: limitKey,
  })
  return app.rateLimit() as unknown as Limiter
}
