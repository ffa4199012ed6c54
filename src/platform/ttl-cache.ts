import { Lru } from './lru.ts'

/** A bounded LRU map (lru.ts) whose entries expire `ttlMs` after they were set. */
export class TtlCache<V> {
  private readonly entries: Lru<string, { value: V; expires: number }>

  constructor(
    max: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = new Lru(max)
  }

  get(key: string): { value: V } | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expires <= this.now()) {
      this.entries.delete(key)
      return undefined
    }
    return { value: entry.value }
  }

  set(key: string, value: V): void {
    this.entries.set(key, { value, expires: this.now() + this.ttlMs })
  }

  delete(key: string): void {
    this.entries.delete(key)
  }

  clear(): void {
    this.entries.clear()
  }

  get size(): number {
    return this.entries.size
  }
}
