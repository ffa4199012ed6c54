import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { AuthConfig } from './auth-config.ts'
import { createGuard } from './guard.ts'
import { registerHardening } from './hardening.ts'
import { accessFor } from './policy.ts'
import { tokenRoutes } from './routes.ts'
import { TokenService } from './service.ts'

export type { AuthConfig } from './auth-config.ts'
export { UNAUTHENTICATED } from './guard.ts'
export { type Access, accessFor, allows, POLICY, ROLES, type Role } from './policy.ts'
export { type Principal, TOKEN_NOT_FOUND, type TokenInfo, TokenService } from './service.ts'
export { hashToken } from './token-secret.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The admin token created at this first start (to be shown once), else null. */
    bootstrapToken?: string | null
  }
}

/** For the OpenAPI document: does this route need a bearer token under this configuration? */
export function securityOf(config: Pick<AuthConfig, 'METRICS_TOKEN'>) {
  return (method: string, url: string): 'bearer' | 'public' => {
    const access = accessFor(method, url)
    return access === 'public' || (access === 'metrics' && !config.METRICS_TOKEN) ? 'public' : 'bearer'
  }
}

/** Token lookups are trusted this long: a revocation made on another replica (or the CLI) bites within it. */
export const TOKEN_CACHE_TTL_MS = 30_000

export interface AuthModuleOptions {
  db: Kysely<Database>
  config: AuthConfig
  log: FastifyBaseLogger
}

/**
 * Builds the auth module: bearer tokens with roles on every /api route (policy.ts, default-deny),
 * security headers, CORS and rate limits. Register its plugin before the modules' routes.
 */
export function createAuthModule({ db, config, log }: AuthModuleOptions) {
  const service = new TokenService(db, {
    adminToken: config.ADMIN_TOKEN,
    cacheTtlMs: TOKEN_CACHE_TTL_MS,
    onTouchError: (err) => log.warn({ err }, 'could not record a token use'),
  })
  const plugin = fp(
    async (app) => {
      const limit = await registerHardening(app, config)
      if (config.AUTH_DISABLED) {
        app.log.warn(
          'HTTP authentication is OFF (AUTH_DISABLED=true): anyone who reaches this port may do anything',
        )
      } else {
        // Shown once, plainly, by the start-up banner (src/banner.ts), not buried in a log line here.
        const token = await service.bootstrap()
        if (token) app.log.info('no admin token existed: created API token "bootstrap-admin" (role admin)')
        app.decorate('bootstrapToken', token ?? null)
      }
      app.addHook(
        'onRequest',
        createGuard({
          tokens: service,
          metricsToken: config.METRICS_TOKEN,
          limit,
          enabled: !config.AUTH_DISABLED,
        }),
      )
      await app.register(tokenRoutes, { tokens: service })
    },
    { name: 'auth', dependencies: ['db'] },
  )
  return { service, plugin }
}
