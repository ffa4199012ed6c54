import type { Measurement } from './messages.ts'
import type { MeterPhysics } from './meter-physics.ts'

/** Temperature, battery (and THD on AC) go out once a minute of sampled time. */
const AUX_PERIOD_S = 60
/** After a long stall (a suspended process) only this many samples are made up. */
const MAX_CATCH_UP = 10_000
const UNITS: Record<string, string> = {
  voltage_dc: 'V',
  current_dc: 'A',
  voltage_ac: 'V',
  current_ac: 'A',
  frequency: 'Hz',
  thd_v: '%',
  thd_i: '%',
  temperature: 'Cel',
  battery: 'V',
}

/**
 * The meter's sampling: every instant due since the last call, one cadence apart, becomes
 * measurements (voltage and current; frequency and PF on AC; the slow readings now and then).
 * Sampling lazily when a datagram is due gives the same timestamps and values as a timer per
 * sample would, at a fraction of the timers for a large fleet.
 */
export class Sampler {
  /** The last enclosure temperature read (hello's temp_internal derives from it). */
  temperature = 25
  private lastSampleAt = 0
  private auxDue_s = 0

  constructor(private readonly physics: MeterPhysics) {}

  /** A boot: sampling starts now, the slow readings go with the first sample. */
  restart(now: number): void {
    this.lastSampleAt = now
    this.auxDue_s = 0
  }

  /** Readings per sampling instant (for splitting datagrams without cutting an instant apart). */
  get perSample(): number {
    return this.physics.supply.kind === 'dc' ? 2 : 4
  }

  /** The samples due at `now`; `cadenceMs` is simulated time, `realStepMs` its length on the wall clock. */
  collect(now: number, cadenceMs: number, realStepMs: number): Measurement[] {
    let due = Math.floor((now - this.lastSampleAt) / realStepMs)
    if (due <= 0) return []
    if (due > MAX_CATCH_UP) {
      this.lastSampleAt = now - MAX_CATCH_UP * realStepMs
      due = MAX_CATCH_UP
    }
    const measurements: Measurement[] = []
    const add = (ts: string, type: string, val: number) =>
      measurements.push({ ts, type, val, unit: UNITS[type] })
    const kind = this.physics.supply.kind
    for (let k = 1; k <= due; k++) {
      const ts = new Date(this.lastSampleAt + k * realStepMs).toISOString()
      const s = this.physics.step(cadenceMs / 1000)
      add(ts, `voltage_${kind}`, s.voltage)
      add(ts, `current_${kind}`, s.current)
      if (s.frequency !== undefined) add(ts, 'frequency', s.frequency)
      if (s.pf !== undefined) measurements.push({ ts, type: 'pf', val: s.pf })
      this.auxDue_s -= cadenceMs / 1000
      if (this.auxDue_s <= 0) {
        this.auxDue_s += AUX_PERIOD_S
        const aux = this.physics.auxiliary()
        this.temperature = aux.temperature
        for (const [type, val] of Object.entries(aux)) add(ts, type, val)
      }
    }
    this.lastSampleAt += due * realStepMs
    return measurements
  }
}
