import { ABSURD_LIMITS } from './measurement-types.ts'

/**
 * Units devices may send per measurement type (PROTOCOL.md "Measurement types"), the first being
 * the base unit the server stores. An SI prefix m, k or M is allowed on V, A, Hz, W, VA and var.
 */
const ACCEPTED: Record<string, readonly string[]> = {
  voltage_dc: ['V'],
  current_dc: ['A'],
  voltage_ac: ['V'],
  current_ac: ['A'],
  frequency: ['Hz'],
  pf: ['', '1'],
  thd_v: ['%'],
  thd_i: ['%'],
  temperature: ['Cel', '°C', 'degC'],
  battery: ['V'],
  power_reactive: ['var'],
  phase_angle: ['°', 'deg'],
}
const PREFIXABLE = new Set(['V', 'A', 'Hz', 'W', 'VA', 'var'])
type Scale = { mul: number; div: number }
/** Multiplied (k, M) or divided (m) by an integer: 0.75 kV is exactly 750 V, 750000 mV exactly 750 V. */
const PREFIXES: Record<string, Scale> = {
  m: { mul: 1, div: 1000 },
  k: { mul: 1000, div: 1 },
  M: { mul: 1_000_000, div: 1 },
}
const SAME: Scale = { mul: 1, div: 1 }

/**
 * How a value of `type` in `unit` converts to the base unit: multiplied by `mul` and divided by
 * `div` (one of them 1, so the result is exactly val × mul or val ÷ div), or why the unit does not fit.
 */
export function unitScale(type: string, unit: string | undefined): Scale | { error: string } {
  const accepted = ACCEPTED[type]
  // Types the protocol does not list are stored as sent, unit and all.
  if (!accepted || unit === undefined || accepted.includes(unit)) return SAME
  const base = unit.slice(1)
  const prefix = PREFIXES[unit.slice(0, 1)]
  if (prefix && PREFIXABLE.has(base) && accepted.includes(base)) return prefix
  const allowed = accepted.filter((u) => u !== '').join(', ') || 'none'
  return {
    error: `${type}: unit "${unit}" does not fit (base unit ${allowed}${PREFIXABLE.has(accepted[0] ?? '') ? ', with m, k or M' : ''})`,
  }
}

/** A value converted to its type's base unit, or why the unit does not fit the type. */
export function toBaseUnit(type: string, unit: string | undefined, val: number): number | { error: string } {
  const scale = unitScale(type, unit)
  if (scale === SAME) return val
  return 'error' in scale ? scale : (val * scale.mul) / scale.div
}

/** True when a value is finite but physically absurd for its type (stored flagged, never in power). */
export function isAbsurd(type: string, val: number): boolean {
  const limit = ABSURD_LIMITS[type]
  return limit !== undefined && !(Math.abs(val) <= limit)
}
