import type { SeededRandom } from './seeded-random.ts'

export type Phase = 'dwell' | 'accelerate' | 'cruise' | 'coast' | 'brake'

interface PhasePlan {
  phase: Phase
  duration_s: number
  /** Traction demand of the phase as a fraction of the vehicle's maximum current. */
  level: number
}

const NEXT: Record<Phase, Phase> = {
  dwell: 'accelerate',
  accelerate: 'cruise',
  cruise: 'coast',
  coast: 'brake',
  brake: 'dwell',
}

/** How fast the demand may change (fraction of the maximum per second): a jerk limit. */
const RAMP_PER_S = 0.5

/**
 * The traction demand of a metro train running from station to station: dwell (doors open,
 * no traction), accelerate (full current, then falling in the constant-power region), cruise,
 * coast, brake with regeneration (negative; the electric brake fades at low speed) — repeat.
 * Returned as a fraction of the maximum line current in [-1, 1]; auxiliary load is not included.
 */
export class DutyCycle {
  private plan: PhasePlan
  private elapsed: number
  private demand = 0

  constructor(private readonly rng: SeededRandom) {
    this.plan = this.planFor('dwell')
    // Trains of one fleet are not in step: start somewhere inside the first dwell.
    this.elapsed = rng.between(0, this.plan.duration_s)
  }

  get phase(): Phase {
    return this.plan.phase
  }

  /** Advances the cycle by dt seconds; returns the demand at the end of the step. */
  step(dt_s: number): number {
    this.elapsed += dt_s
    while (this.elapsed >= this.plan.duration_s) {
      this.elapsed -= this.plan.duration_s
      this.plan = this.planFor(NEXT[this.plan.phase])
    }
    const target = this.target()
    const maxStep = RAMP_PER_S * dt_s
    this.demand += Math.max(-maxStep, Math.min(maxStep, target - this.demand))
    return this.demand
  }

  private target(): number {
    const { phase, duration_s, level } = this.plan
    const x = duration_s > 0 ? this.elapsed / duration_s : 1
    switch (phase) {
      case 'dwell':
      case 'coast':
        return 0
      case 'cruise':
        return level
      case 'accelerate':
        return x < 0.55 ? level : level * (1 - (0.5 * (x - 0.55)) / 0.45)
      case 'brake':
        return x < 0.75 ? -level : (-level * (1 - x)) / 0.25
    }
  }

  private planFor(phase: Phase): PhasePlan {
    const r = this.rng
    switch (phase) {
      case 'dwell':
        return { phase, duration_s: r.between(20, 40), level: 0 }
      case 'accelerate':
        return { phase, duration_s: r.between(15, 25), level: r.between(0.85, 1) }
      case 'cruise':
        // Short hops between close stations go straight from accelerating to coasting.
        return { phase, duration_s: r.chance(0.3) ? 0 : r.between(10, 40), level: r.between(0.25, 0.45) }
      case 'coast':
        return { phase, duration_s: r.between(5, 20), level: 0 }
      case 'brake':
        return { phase, duration_s: r.between(10, 16), level: r.between(0.5, 0.75) }
    }
  }
}
