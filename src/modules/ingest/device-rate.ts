import { Lru } from '../../platform/lru.ts'

interface Bucket {
  tokens: number
  at: number
}

/**
 * A token bucket per device: `ratePerS` messages per second, bursts up to one second's worth.
 * The buckets live in a bounded LRU; a device evicted from it starts again with a full bucket
 * (the limit is a guard against floods, not an accounting). Cost: one Map lookup per message.
 */
export class DeviceRateLimiter {
  private readonly buckets: Lru<string, Bucket>

  constructor(
    private readonly ratePerS: number,
    capacity: number,
    private readonly now: () => number = Date.now,
  ) {
    this.buckets = new Lru(capacity)
  }

  /** True when the device may send one more message now (and takes a token for it). */
  take(deviceId: string): boolean {
    const now = this.now()
    const burst = this.ratePerS
    const bucket = this.buckets.get(deviceId) ?? { tokens: burst, at: now }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerS)
    bucket.at = now
    const allowed = bucket.tokens >= 1
    if (allowed) bucket.tokens -= 1
    this.buckets.set(deviceId, bucket)
    return allowed
  }
}
