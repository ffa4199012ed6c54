/** The traction supply systems of PROTOCOL.md and the electrical model of each. */
export type VoltageSystem = 'DC750' | 'DC1500' | 'DC3000' | 'AC15k' | 'AC25k'

export interface SupplySystem {
  kind: 'dc' | 'ac'
  label: string
  nominal_v: number
  /** The range PROTOCOL.md gives for the system; regeneration and traction are limited inside it. */
  min_v: number
  max_v: number
  /** Substation output with no train drawing (EN 50163 lets it sit above nominal). */
  no_load_v: number
  /** Line + substation impedance seen by the train (Ω): the voltage sags under load, rises in regen. */
  line_ohm: number
  /** The vehicle's maximum line current (A). */
  max_a: number
  frequency_hz?: number
}

export const SUPPLY_SYSTEMS: Readonly<Record<VoltageSystem, SupplySystem>> = Object.freeze({
  DC750: {
    kind: 'dc',
    label: 'DC 750 V',
    nominal_v: 750,
    min_v: 500,
    max_v: 900,
    no_load_v: 790,
    line_ohm: 0.035,
    max_a: 3000,
  },
  DC1500: {
    kind: 'dc',
    label: 'DC 1500 V',
    nominal_v: 1500,
    min_v: 1000,
    max_v: 1800,
    no_load_v: 1600,
    line_ohm: 0.08,
    max_a: 2000,
  },
  DC3000: {
    kind: 'dc',
    label: 'DC 3000 V',
    nominal_v: 3000,
    min_v: 2200,
    max_v: 3600,
    no_load_v: 3250,
    line_ohm: 0.25,
    max_a: 1200,
  },
  AC15k: {
    kind: 'ac',
    label: 'AC 15 kV 16.7 Hz',
    nominal_v: 15000,
    min_v: 12000,
    max_v: 17500,
    no_load_v: 15500,
    line_ohm: 2.5,
    max_a: 600,
    frequency_hz: 16.7,
  },
  AC25k: {
    kind: 'ac',
    label: 'AC 25 kV 50 Hz',
    nominal_v: 25000,
    min_v: 17500,
    max_v: 29000,
    no_load_v: 26000,
    line_ohm: 6,
    max_a: 350,
    frequency_hz: 50,
  },
})

export const DC_SYSTEMS: readonly VoltageSystem[] = ['DC750', 'DC1500', 'DC3000']
export const AC_SYSTEMS: readonly VoltageSystem[] = ['AC25k', 'AC15k']
