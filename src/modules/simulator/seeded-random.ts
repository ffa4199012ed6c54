/** Mixes integers into one 32-bit seed (murmur3's finalizer per part), so (seed, device, stream) differ. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
  }
  return h >>> 0
}

/**
 * mulberry32: a tiny 32-bit PRNG. The same seed gives the same sequence on every platform,
 * which is what makes SIMULATOR_SEED runs reproducible; it is not for anything secret.
 */
export class SeededRandom {
  private state: number
  private spare: number | undefined

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next()
  }

  /** True with probability p; p ≤ 0 never draws, so a knob at 0 leaves the sequence untouched. */
  chance(p: number): boolean {
    if (p <= 0) return false
    return this.next() < p
  }

  /** Normal distribution (Box–Muller, the second value kept for the next call). */
  gaussian(mean = 0, sd = 1): number {
    if (this.spare !== undefined) {
      const z = this.spare
      this.spare = undefined
      return mean + sd * z
    }
    const u = 1 - this.next()
    const v = this.next()
    const r = Math.sqrt(-2 * Math.log(u))
    this.spare = r * Math.sin(2 * Math.PI * v)
    return mean + sd * r * Math.cos(2 * Math.PI * v)
  }
}
