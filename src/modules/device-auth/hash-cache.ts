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

type Entry = { hash: string | null; expires: number }

/**
 * The stored secret hash by device_id, in front of the database: a refused guess or a reconnect
 * loop costs a map lookup, not a query. Bounded LRU maps, one for ids with a hash and one for ids
 * without, so forged ids evict each other, never the fleet's entries. A change on this replica
 * (`forget`) bites at once, also on a lookup that was in flight when it happened.
 */
export class HashCache {
  private readonly known = new Map<string, Entry>()
  private readonly unknown = new Map<string, Entry>()
  /** Bumped by every forget: a lookup that started before it must not store its (stale) answer. */
  private generation = 0

  constructor(
    private readonly options: HashCacheOptions = DEFAULT_HASH_CACHE,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cached hash (null: the id has none), else `load`'s answer, which is then cached. */
  async get(deviceId: string, load: () => Promise<string | undefined>): Promise<string | null> {
    const cached = this.take(this.known, deviceId) ?? this.take(this.unknown, deviceId)
    if (cached) return cached.hash
    const generation = this.generation
    const hash = (await load()) ?? null
    if (generation === this.generation) this.put(deviceId, hash)
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

  private take(map: Map<string, Entry>, deviceId: string): Entry | undefined {
    const entry = map.get(deviceId)
    if (!entry) return undefined
    map.delete(deviceId)
    if (entry.expires <= this.now()) return undefined
    map.set(deviceId, entry)
    return entry
  }

  private put(deviceId: string, hash: string | null): void {
    const map = hash === null ? this.unknown : this.known
    const ttl = hash === null ? this.options.missTtlMs : this.options.hitTtlMs
    map.delete(deviceId)
    map.set(deviceId, { hash, expires: this.now() + ttl })
    if (map.size > this.options.max) {
      const oldest = map.keys().next().value
      if (oldest !== undefined) map.delete(oldest)
    }
  }
}
