import { isIPv6 } from 'node:net'

/**
 * The key an address is counted under: IPv4 as is (also IPv4-mapped IPv6), IPv6 by its /64 — one
 * host is usually given a whole /64, so counting single IPv6 addresses would count nothing.
 */
export function addressKey(address: string): string {
  const plain = address.split('%')[0] as string
  if (plain.toLowerCase().startsWith('::ffff:') && plain.includes('.')) return plain.slice(7)
  if (!isIPv6(plain)) return plain
  const [head = '', tail] = plain.toLowerCase().split('::')
  const front = head ? head.split(':') : []
  const back = tail ? tail.split(':') : []
  // '::' stands for the zero groups missing from 8 (a trailing dotted IPv4 part is two groups).
  const missing = 8 - front.length - back.length - (tail?.includes('.') ? 1 : 0)
  const groups = tail === undefined ? front : [...front, ...Array<string>(missing).fill('0'), ...back]
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}

/**
 * Failures per key (a remote address, a device id), in fixed windows that start at a key's first
 * failure. A key that reached `max` failures is blocked until its window ends (refusals while
 * blocked are not counted, so they do not prolong it). At most `maxKeys` are tracked: beyond, the
 * key whose window started first is forgotten, so forged keys cannot grow the map. `max` 0 = off.
 */
export class FailureWindows {
  private readonly windows = new Map<string, { count: number; until: number }>()

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly options: { maxKeys?: number; keyOf?: (raw: string) => string; now?: () => number } = {},
  ) {}

  private get now(): number {
    return (this.options.now ?? Date.now)()
  }

  /** True when the key has used up its failures of the current window. */
  blocked(raw: string): boolean {
    if (this.max === 0) return false
    const key = this.keyOf(raw)
    const window = this.windows.get(key)
    if (!window) return false
    if (window.until <= this.now) {
      this.windows.delete(key)
      return false
    }
    return window.count >= this.max
  }

  record(raw: string): void {
    if (this.max === 0) return
    const key = this.keyOf(raw)
    const now = this.now
    const window = this.windows.get(key)
    if (window && window.until > now) {
      window.count++
      return
    }
    this.windows.delete(key)
    this.windows.set(key, { count: 1, until: now + this.windowMs })
    if (this.windows.size > (this.options.maxKeys ?? 10_000)) {
      const oldest = this.windows.keys().next().value
      if (oldest !== undefined) this.windows.delete(oldest)
    }
  }

  /** Keys tracked now (bounded by `maxKeys`). */
  get size(): number {
    return this.windows.size
  }

  private keyOf(raw: string): string {
    return this.options.keyOf ? this.options.keyOf(raw) : raw
  }
}
