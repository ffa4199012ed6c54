import { DutyCycle, type Phase } from './duty-cycle.ts'
import type { SeededRandom } from './seeded-random.ts'
import { SUPPLY_SYSTEMS, type SupplySystem, type VoltageSystem } from './supply-systems.ts'

/** One sampling instant. DC: `current` is signed (negative = regenerating). AC: RMS magnitude, `pf` signed. */
export interface PhysicsSample {
  phase: Phase
  voltage: number
  current: number
  frequency?: number
  pf?: number
}

/** Slow readings sent now and then: meter temperature, backup battery, and harmonic distortion on AC. */
export interface AuxiliaryReadings {
  temperature: number
  battery: number
  thd_v?: number
  thd_i?: number
}

const round = (value: number, step: number) => Math.round(value / step) * step
const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value))
const fixed = (value: number, digits: number) => Number(value.toFixed(digits))

/** Active power of a sample (W): V × I on DC, Vrms × Irms × PF on AC — as the server computes it. */
export function activePower(sample: PhysicsSample): number {
  return sample.voltage * sample.current * (sample.pf ?? 1)
}

/**
 * The electrical side of one meter on a train: the duty cycle's demand becomes a line current
 * (plus a small auxiliary load), the line voltage sags under traction and rises in regeneration
 * through the line impedance, the substation voltage and the AC frequency drift slowly, and
 * measurement noise is added. Regeneration is cut back before the voltage leaves the system's
 * range and traction before it drops out of it, as the vehicle's converter does. Pure and seeded.
 */
export class MeterPhysics {
  readonly supply: SupplySystem
  private readonly cycle: DutyCycle
  private readonly auxFraction: number
  private readonly ambient: number
  private sourceDrift = 0
  private frequencyDrift = 0
  private loadAverage = 0
  private battery: number
  private lastLoad = 0

  constructor(
    readonly system: VoltageSystem,
    private readonly rng: SeededRandom,
  ) {
    this.supply = SUPPLY_SYSTEMS[system]
    this.cycle = new DutyCycle(rng)
    this.auxFraction = rng.between(0.005, 0.015)
    this.ambient = rng.between(10, 30)
    this.battery = rng.between(3.6, 3.7)
  }

  get phase(): Phase {
    return this.cycle.phase
  }

  /** Advances dt seconds and returns what the meter measures at the end of the step. */
  step(dt_s: number): PhysicsSample {
    const s = this.supply
    const r = this.rng
    // Mean-reverting drifts (Ornstein–Uhlenbeck): other trains on the section move the substation voltage.
    this.sourceDrift += -0.05 * this.sourceDrift * dt_s + 0.0032 * Math.sqrt(dt_s) * r.gaussian()
    this.sourceDrift = clamp(this.sourceDrift, -0.03, 0.03)
    const source = s.no_load_v * (1 + this.sourceDrift)

    const demand = this.cycle.step(dt_s)
    let current = (demand + this.auxFraction) * s.max_a
    current += r.gaussian(0, 0.002 * s.max_a + 0.005 * Math.abs(current))
    const ceiling = s.max_v * 0.98
    const floor = s.min_v * 1.05
    if (source - current * s.line_ohm > ceiling) current = -(ceiling - source) / s.line_ohm
    if (source - current * s.line_ohm < floor) current = (source - floor) / s.line_ohm
    const voltage = source - current * s.line_ohm + r.gaussian(0, 0.001 * s.nominal_v)

    const load = Math.abs(current) / s.max_a
    this.lastLoad = load
    this.loadAverage += (load - this.loadAverage) * Math.min(1, dt_s / 600)

    if (s.kind === 'dc') {
      return {
        phase: this.phase,
        voltage: fixed(round(voltage, 0.1), 1),
        current: fixed(round(current, 0.1), 1),
      }
    }
    const nominalHz = s.frequency_hz ?? 50
    const spread = nominalHz < 20 ? 0.03 : 0.02
    this.frequencyDrift += -0.1 * this.frequencyDrift * dt_s + spread * 0.45 * Math.sqrt(dt_s) * r.gaussian()
    this.frequencyDrift = clamp(this.frequencyDrift, -0.1, 0.1)
    const pfMagnitude = clamp(r.gaussian(0.975, 0.008), 0.95, 0.99)
    return {
      phase: this.phase,
      voltage: Math.round(voltage),
      current: fixed(round(Math.abs(current), 0.1), 1),
      frequency: fixed(nominalHz + this.frequencyDrift, 2),
      pf: fixed(current < 0 ? -pfMagnitude : pfMagnitude, 3),
    }
  }

  /** The slow readings: enclosure temperature follows ambient plus the recent load. */
  auxiliary(): AuxiliaryReadings {
    const r = this.rng
    this.battery = clamp(this.battery + r.gaussian(0, 0.003), 3.5, 3.75)
    const readings: AuxiliaryReadings = {
      temperature: fixed(clamp(this.ambient + 20 * this.loadAverage + r.gaussian(0, 0.2), -40, 85), 1),
      battery: fixed(this.battery, 2),
    }
    if (this.supply.kind === 'ac') {
      readings.thd_v = fixed(clamp(r.gaussian(2.2, 0.3) + this.lastLoad, 0.5, 8), 1)
      readings.thd_i = fixed(clamp(3 + 12 * (1 - this.lastLoad) + r.gaussian(0, 0.5), 1, 30), 1)
    }
    return readings
  }
}
