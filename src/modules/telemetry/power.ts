/** The electrical measurements of one sampling instant (PROTOCOL.md "Measurement types"). */
export interface ElectricalValues {
  voltage_dc?: number
  current_dc?: number
  voltage_ac?: number
  current_ac?: number
  pf?: number
  /** Q as the meter measured it (var, + inductive, − capacitive), when it sends one. */
  power_reactive?: number
  /** The phase angle φ (°, −180…180): the sign of Q when the meter does not send Q. */
  phase_angle?: number
}

/** Powers the server derives (PROTOCOL.md "Values the server computes"): W, VA, var. */
export interface DerivedPower {
  power_active?: number
  power_apparent?: number
  power_reactive?: number
}

import type { PowerSample } from './energy-integrator.ts'
import { isAbsurd } from './units.ts'

const finite = (v: number | undefined): v is number => typeof v === 'number' && Number.isFinite(v)

/**
 * Active, apparent and reactive power of one instant. DC: P = V × I (negative while regenerating).
 * AC: S = Vrms × Irms, P = S × PF, Q = √(S² − P²) ≥ 0 (PF carries no inductive/capacitive sign).
 * A quantity whose inputs are missing or non-finite is left out; a PF outside −1…1 gives S only.
 * A sample carrying a complete DC pair is a DC meter's: its AC values, if any, are ignored.
 * A physically absurd input (units.ts isAbsurd) gives no power at all: never an overflow.
 * This is the one definition of power: every store (PostgreSQL, InfluxDB) derives P/S/Q with it.
 */
export function derivePower(values: ElectricalValues): DerivedPower {
  const { voltage_dc, current_dc, voltage_ac, current_ac, pf } = values
  if (finite(voltage_dc) && finite(current_dc)) {
    if (isAbsurd('voltage_dc', voltage_dc) || isAbsurd('current_dc', current_dc)) return {}
    return { power_active: voltage_dc * current_dc }
  }
  if (!finite(voltage_ac) || !finite(current_ac)) return {}
  if (isAbsurd('voltage_ac', voltage_ac) || isAbsurd('current_ac', current_ac)) return {}
  const s = voltage_ac * current_ac
  if (!finite(s)) return {}
  if (!finite(pf) || pf < -1 || pf > 1) return { power_apparent: s }
  const p = s * pf
  // (S − |P|)(S + |P|) is S² − P² without the cancellation of two large squares; clamp rounding below 0
  const a = Math.abs(p)
  const magnitude = Math.sqrt(Math.max(0, (s - a) * (s + a)))
  const sign = reactiveSign(values)
  const q =
    finite(values.power_reactive) && sign !== undefined ? values.power_reactive : (sign ?? 1) * magnitude
  return { power_active: p, power_apparent: s, power_reactive: q }
}

/**
 * The sign of Q when the meter states it: that of its `power_reactive` (+ inductive, − capacitive),
 * else of sin φ from its `phase_angle`; undefined when it sends neither (PF alone has no sign of Q:
 * the reactive energy is then a magnitude, reported as such, never guessed).
 */
export function reactiveSign(values: ElectricalValues): 1 | -1 | undefined {
  const { power_reactive: q, phase_angle: phi } = values
  if (finite(q) && !isAbsurd('power_reactive', q)) return q < 0 ? -1 : 1
  if (finite(phi) && !isAbsurd('phase_angle', phi)) return Math.sin((phi * Math.PI) / 180) < 0 ? -1 : 1
  return undefined
}

/**
 * The energy integrator's sample of one instant's derived powers (undefined without P): how every
 * store turns derivePower's answer into a sample. `signed`: the meter stated the sign of Q.
 */
export function powerSampleOf(t: number, power: DerivedPower, signed: boolean): PowerSample | undefined {
  if (power.power_active === undefined) return undefined
  const sample: PowerSample = { t, p: power.power_active }
  if (power.power_apparent !== undefined) sample.s = power.power_apparent
  if (power.power_reactive !== undefined) {
    sample.q = power.power_reactive
    sample.signed = signed
  }
  return sample
}
