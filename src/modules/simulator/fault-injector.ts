import type { Outgoing } from './messages.ts'
import type { SeededRandom } from './seeded-random.ts'

export interface FaultRates {
  duplicate: number
  drop: number
  reorder: number
}

/**
 * The fault knobs, applied to the data path (telemetry and hello) after the seq is assigned:
 * drop skips the publish (the seq is consumed, so the server sees a gap), duplicate publishes
 * the same bytes twice, reorder holds a message back and sends it after the next one.
 * Acks and OTA progress are never faulted, so command flows stay deterministic.
 */
export class FaultInjector {
  private held: Outgoing | undefined

  constructor(
    private readonly rates: FaultRates,
    private readonly rng: SeededRandom,
  ) {}

  /** What to publish now, in order, for this message. */
  route(message: Outgoing, faultable: boolean): Outgoing[] {
    if (!faultable) return this.release([message])
    if (this.rng.chance(this.rates.drop)) return []
    const copies = this.rng.chance(this.rates.duplicate) ? [message, message] : [message]
    if (!this.held && this.rng.chance(this.rates.reorder)) {
      this.held = message
      return copies.slice(1)
    }
    return this.release(copies)
  }

  /** The held message, if any (at shutdown: better late than never). */
  flush(): Outgoing[] {
    return this.release([])
  }

  private release(messages: Outgoing[]): Outgoing[] {
    if (!this.held) return messages
    const held = this.held
    this.held = undefined
    return [...messages, held]
  }
}
