import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import { accessFor, allows, type Role } from './policy.ts'
import type { Principal, TokenService } from './service.ts'
import { bearerToken, sameSecret } from './token-secret.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth guard once a bearer token was verified. */
    principal?: Principal
  }
}

export type Limiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

export interface GuardOptions {
  tokens: TokenService
  metricsToken?: string
  /** Per-token (else per-IP) request budget; health and metrics routes skip it. */
  limit?: Limiter
  /** false: AUTH_DISABLED, every route is open (the limiter still applies). */
  enabled: boolean
}

const EXEMPT_FROM_LIMIT = new Set(['/health', '/healthz', '/readyz', '/metrics'])
export const UNAUTHENTICATED = 'Missing or invalid bearer token'

const unauthorized = (reply: FastifyReply) =>
  reply
    .code(401)
    .header('www-authenticate', 'Bearer')
    .send({ error: UNAUTHENTICATED, code: 'unauthenticated' })
const forbidden = (reply: FastifyReply, role: Role) =>
  reply.code(403).send({ error: `This needs the ${role} role`, code: 'forbidden' })

/** The rate-limit key: the token when one was verified, else the client address. */
export const limitKey = (request: FastifyRequest): string =>
  request.principal ? `token:${request.principal.id ?? 'ADMIN_TOKEN'}` : `ip:${request.ip}`

/**
 * One onRequest hook, before the body is read: identify the caller, spend its rate budget
 * (failed attempts count against the address), then apply the policy table.
 */
export function createGuard({
  tokens,
  metricsToken,
  limit,
  enabled,
}: GuardOptions): onRequestAsyncHookHandler {
  return async function authGuard(request, reply) {
    const route = request.routeOptions.url
    const access = enabled ? accessFor(request.method, route, request.url.split('?')[0]) : 'public'
    const exempt = route !== undefined && EXEMPT_FROM_LIMIT.has(route)
    if (access === 'public' || (access === 'metrics' && !metricsToken)) {
      if (!exempt) await limit?.(request, reply)
      return
    }
    const token = bearerToken(request.headers.authorization)
    if (access === 'metrics' && token && metricsToken && sameSecret(token, metricsToken)) return
    request.principal = token ? await tokens.verify(token) : undefined
    if (!exempt) await limit?.(request, reply)
    if (!request.principal) return unauthorized(reply)
    const needed: Role = access === 'metrics' ? 'admin' : access
    if (!allows(request.principal.role, needed)) return forbidden(reply, needed)
  }
}
