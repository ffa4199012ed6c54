import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { NotFoundError } from '../../platform/domain-errors.ts'
import { TtlCache } from '../../platform/ttl-cache.ts'
import type { Role } from './policy.ts'
import * as repo from './repository.ts'
import { hashToken, looksLikeToken, newToken, sameSecret } from './token-secret.ts'

/** Who made a request: a stored token, or the ADMIN_TOKEN of the environment (id null). */
export interface Principal {
  id: number | null
  name: string
  role: Role
}

export interface TokenInfo {
  id: number
  name: string
  role: Role
  created_at: string
  last_used_at: string | null
  revoked_at: string | null
}

export interface TokenServiceOptions {
  /** ADMIN_TOKEN: accepted as an admin token, never stored. */
  adminToken?: string
  /** How long a lookup (found or not) is trusted: the delay before a revocation made elsewhere bites. */
  cacheTtlMs?: number
  cacheMax?: number
  /** last_used_at is written at most once per this period per token. */
  touchEveryMs?: number
  now?: () => number
  onTouchError?: (error: unknown) => void
}

export const TOKEN_NOT_FOUND = 'Token not found'
const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null)
const toInfo = (row: repo.TokenRow): TokenInfo => ({
  id: row.id,
  name: row.name,
  role: row.role,
  created_at: new Date(row.created_at).toISOString(),
  last_used_at: iso(row.last_used_at),
  revoked_at: iso(row.revoked_at),
})

/** API tokens: created (shown once), listed without secrets, revoked, and verified with a short cache. */
export class TokenService {
  private readonly cache: TtlCache<Principal | null>
  private readonly touched = new Map<number, number>()
  private readonly now: () => number

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: TokenServiceOptions = {},
  ) {
    this.now = options.now ?? Date.now
    this.cache = new TtlCache(options.cacheMax ?? 10_000, options.cacheTtlMs ?? 30_000, this.now)
  }

  /** Creates a token; the returned `token` is the only time the secret exists outside its holder. */
  async create(name: string, role: Role): Promise<TokenInfo & { token: string }> {
    const token = newToken()
    const row = await repo.insertToken(this.db, { name, role, token_hash: hashToken(token) })
    return { ...toInfo(row), token }
  }

  async list(): Promise<TokenInfo[]> {
    return (await repo.listTokens(this.db)).map(toInfo)
  }

  /** Revokes at once on this instance; other instances notice within the cache TTL. */
  async revoke(id: number): Promise<TokenInfo> {
    const row = await repo.revokeToken(this.db, id)
    if (!row) throw new NotFoundError(TOKEN_NOT_FOUND)
    this.cache.clear()
    return toInfo(row)
  }

  /** The principal a bearer token stands for, or undefined. */
  async verify(token: string): Promise<Principal | undefined> {
    if (this.options.adminToken && sameSecret(token, this.options.adminToken)) {
      return { id: null, name: 'ADMIN_TOKEN', role: 'admin' }
    }
    if (!looksLikeToken(token)) return undefined
    const hash = hashToken(token)
    const cached = this.cache.get(hash)
    let principal: Principal | null
    if (cached) {
      principal = cached.value
    } else {
      principal = (await repo.findActiveByHash(this.db, hash)) ?? null
      this.cache.set(hash, principal)
    }
    if (principal?.id != null) this.touch(principal.id)
    return principal ?? undefined
  }

  /**
   * First start: when no ADMIN_TOKEN is configured and no active admin token exists, creates one.
   * Returns it (to be shown once) or undefined when nothing was needed.
   */
  async bootstrap(): Promise<string | undefined> {
    if (this.options.adminToken) return undefined
    return this.db.transaction().execute(async (trx) => {
      await repo.lockBootstrap(trx)
      if (await repo.hasActiveAdmin(trx)) return undefined
      const token = newToken()
      await repo.insertToken(trx, { name: 'bootstrap-admin', role: 'admin', token_hash: hashToken(token) })
      return token
    })
  }

  private touch(id: number): void {
    const now = this.now()
    if (now - (this.touched.get(id) ?? Number.NEGATIVE_INFINITY) < (this.options.touchEveryMs ?? 60_000))
      return
    this.touched.set(id, now)
    repo.touchToken(this.db, id).catch((error) => this.options.onTouchError?.(error))
  }
}
