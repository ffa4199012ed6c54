import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, RouteOptions } from 'fastify'
import type { Config } from '../../config.ts'
import { type Limiter, limitKey } from './guard.ts'

/** API-friendly and fit for a same-origin dashboard: its own scripts only, nothing framed, no plugins. */
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

/** The API reference page (/docs) bootstraps itself with an inline script. */
const docsDirectives = {
  ...directives,
  scriptSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:', 'https:'],
}

/** Security headers, CORS (only when CORS_ORIGINS is set) and the rate limiter the guard calls. */
export async function registerHardening(app: FastifyInstance, config: Config): Promise<Limiter | undefined> {
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives },
    // Browsers ignore HSTS over plain HTTP; behind TLS it pins this host only, not its subdomains.
    strictTransportSecurity: { maxAge: 15_552_000, includeSubDomains: false },
  })
  app.addHook('onRoute', (route: RouteOptions) => {
    // @fastify/helmet reads a route's own settings from config.helmet (its onRoute hook ran already).
    const routeConfig = (route.config ?? {}) as Record<string, unknown>
    if (route.url.startsWith('/docs') && route.helmet === undefined && routeConfig.helmet === undefined) {
      const helmet = { contentSecurityPolicy: { useDefaults: false, directives: docsDirectives } }
      route.config = { ...routeConfig, helmet } as RouteOptions['config']
    }
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
