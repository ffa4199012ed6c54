/** Measurement types of PROTOCOL.md that get a column of their own, with their plausible ranges. */
export const STORED_TYPES = [
  'voltage_dc',
  'current_dc',
  'voltage_ac',
  'current_ac',
  'frequency',
  'pf',
  'thd_v',
  'thd_i',
  'temperature',
  'battery',
] as const
export type StoredType = (typeof STORED_TYPES)[number]

/** Values the server computes from the measured ones (never sent by devices). */
export const DERIVED_TYPES = ['power_active', 'power_apparent', 'power_reactive'] as const
export type DerivedType = (typeof DERIVED_TYPES)[number]

const storedSet = new Set<string>(STORED_TYPES)
export const isStoredType = (type: string): type is StoredType => storedSet.has(type)
export const isDerivedType = (type: string): type is DerivedType =>
  (DERIVED_TYPES as readonly string[]).includes(type)

/**
 * Ranges of PROTOCOL.md; a value outside is still stored, flagged, and raises `out_of_range`.
 * Frequency: 16.7 Hz and 50 Hz systems, with room for drift; battery: a backup supply of up to 60 V.
 */
export const RANGES: Record<StoredType, readonly [number, number]> = {
  voltage_dc: [0, 4000],
  current_dc: [-5000, 5000],
  voltage_ac: [0, 30000],
  current_ac: [0, 2000],
  frequency: [10, 65],
  pf: [-1, 1],
  thd_v: [0, 100],
  thd_i: [0, 100],
  temperature: [-40, 85],
  battery: [0, 60],
}

/** Optional types a meter may send (PROTOCOL.md): kept in the row's `other` column. */
export const OPTIONAL_TYPES = ['power_reactive', 'phase_angle'] as const

/**
 * Beyond these magnitudes (PROTOCOL.md ranges × 10) a finite value is physically absurd: a
 * broken sensor or encoder. It is stored and flagged, but never enters power or energy, so no
 * product of two readings can overflow (1e308 V × 1e308 A).
 */
export const ABSURD_LIMITS: Record<string, number> = {
  voltage_dc: 40_000,
  current_dc: 50_000,
  voltage_ac: 300_000,
  current_ac: 20_000,
  frequency: 650,
  pf: 10,
  power_reactive: 1e9,
  phase_angle: 180,
}

export const UNITS: Record<StoredType | DerivedType, string> = {
  voltage_dc: 'V',
  current_dc: 'A',
  voltage_ac: 'V',
  current_ac: 'A',
  frequency: 'Hz',
  pf: '',
  thd_v: '%',
  thd_i: '%',
  temperature: 'Cel',
  battery: 'V',
  power_active: 'W',
  power_apparent: 'VA',
  power_reactive: 'var',
}
