import { TtlCache } from '../../platform/ttl-cache.ts'

/** How long and how many stored hashes are remembered (defaults: `DEFAULT_HASH_CACHE`). */
export interface HashCacheOptions {
  /** Entries of each kind (known / unknown ids); the least recently used goes first. */
  max: number
  /** A device's hash: other replicas' rotations and revocations reach this one within it. */
  hitTtlMs: number
  /** "No secret" for an id (unknown, unprovisioned or revoked): short, forged ids come and go. */
  missTtlMs: number
}

export const DEFAULT_HASH_CACHE: HashCacheOptions = { max: 10_000, hitTtlMs: 30_000, missTtlMs: 5_000 }

/**
 * The stored secret hash by device_id, in front of the database: a refused guess or a reconnect
 * loop costs a map lookup, not a query. Two bounded LRU caches, one for ids with a hash and one for
 * ids without, so forged ids evict each other, never the fleet's entries. A change on this replica
 * (`forget`) bites at once, also on a lookup that was in flight when it happened.
 */
export class HashCache {
  private readonly known: TtlCache<string>
  private readonly unknown: TtlCache<null>
  /** Bumped by every forget: a lookup that started before it must not store its (stale) answer. */
  private generation = 0

  constructor(options: HashCacheOptions = DEFAULT_HASH_CACHE, now: () => number = Date.now) {
    this.known = new TtlCache(options.max, options.hitTtlMs, now)
    this.unknown = new TtlCache(options.max, options.missTtlMs, now)
  }

  /** The cached hash (null: the id has none), else `load`'s answer, which is then cached. */
  async get(deviceId: string, load: () => Promise<string | undefined>): Promise<string | null> {
    const cached = this.known.get(deviceId) ?? this.unknown.get(deviceId)
    if (cached) return cached.value
    const generation = this.generation
    const hash = (await load()) ?? null
    if (generation === this.generation) {
      if (hash === null) this.unknown.set(deviceId, null)
      else this.known.set(deviceId, hash)
    }
    return hash
  }

  /** The device's secret changed (issued, rotated, revoked) or the device is gone. */
  forget(deviceId: string): void {
    this.generation++
    this.known.delete(deviceId)
    this.unknown.delete(deviceId)
  }

  /** Entries held now: at most 2 × max. */
  get size(): number {
    return this.known.size + this.unknown.size
  }
}
