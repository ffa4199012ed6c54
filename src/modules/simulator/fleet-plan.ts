import type { SimulatorConfig } from './simulator-config.ts'
import { AC_SYSTEMS, DC_SYSTEMS, SUPPLY_SYSTEMS, type VoltageSystem } from './supply-systems.ts'

export interface MeterIdentity {
  /** 1-based position in the fleet; part of the id and of the seed. */
  index: number
  device_id: string
  kind: 'dc' | 'ac'
  system: VoltageSystem
}

/** What a meter runs with; `update_config` changes it, `factory_reset` restores the provisioned one. */
export interface MeterConfig {
  sampling_cadence_ms: number
  send_interval_s: number
  hello_interval_s: number
  /** Broker URLs (mqtt://host:port). */
  brokers: string[]
}

/**
 * A meter's registration, the body of POST /api/devices: declared here, not imported from the
 * devices module, because the simulator shares nothing with the server but MQTT and that API.
 */
export interface MeterRegistration {
  device_id: string
  device_name: string
  device_type: string
  location: string
  metadata: Record<string, unknown>
}

export const FACTORY_FW_VERSION = '1.4.2'
export const HW_REVISION = 'B'

/**
 * The fleet: device i (1-based) is AC when ⌊i·share⌋ steps up, which spreads the AC meters evenly;
 * DC meters take 750 V, 1500 V, 3000 V in turn, AC meters 25 kV 50 Hz and 15 kV 16.7 Hz in turn.
 * Ids are `${prefix}-dc-0001`, `${prefix}-ac-0003`, … (the number is the position in the fleet).
 */
export function planFleet(config: SimulatorConfig): MeterIdentity[] {
  const share = config.SIMULATOR_AC_SHARE
  const width = Math.max(4, String(config.SIMULATOR_DEVICES).length)
  const fleet: MeterIdentity[] = []
  let dc = 0
  let ac = 0
  for (let index = 1; index <= config.SIMULATOR_DEVICES; index++) {
    const kind = Math.floor(index * share) > Math.floor((index - 1) * share) ? 'ac' : 'dc'
    const system = kind === 'ac' ? AC_SYSTEMS[ac++ % AC_SYSTEMS.length] : DC_SYSTEMS[dc++ % DC_SYSTEMS.length]
    const number = String(index).padStart(width, '0')
    fleet.push({
      index,
      device_id: `${config.SIMULATOR_ID_PREFIX}-${kind}-${number}`,
      kind,
      system: system as VoltageSystem,
    })
  }
  return fleet
}

/** The provisioned configuration of every meter of the fleet. */
export function provisionedConfig(config: SimulatorConfig, brokers: string[]): MeterConfig {
  return {
    sampling_cadence_ms: config.SIMULATOR_SAMPLING_MS,
    send_interval_s: config.SIMULATOR_SEND_INTERVAL_S,
    hello_interval_s: config.SIMULATOR_HELLO_INTERVAL_S,
    brokers: [...brokers],
  }
}

/** The registration of a meter (POST /api/devices body): identity, supply, accuracy class, configuration. */
export function registrationOf(identity: MeterIdentity, config: MeterConfig): MeterRegistration {
  const supply = SUPPLY_SYSTEMS[identity.system]
  const number = identity.device_id.slice(identity.device_id.lastIndexOf('-') + 1)
  return {
    device_id: identity.device_id,
    device_name: `Simulated ${supply.label} meter ${number}`,
    device_type: `power_meter_${identity.kind}`,
    location: `Simulated line, vehicle ${number}`,
    metadata: {
      simulated: true,
      voltage_system: identity.system,
      supply: supply.label,
      nominal_voltage_v: supply.nominal_v,
      voltage_range_v: [supply.min_v, supply.max_v],
      max_current_a: supply.max_a,
      ...(supply.frequency_hz ? { frequency_hz: supply.frequency_hz } : {}),
      accuracy_class: '0.5R',
      standards: identity.kind === 'dc' ? ['EN 50463'] : ['EN 50463', 'IEC 62053-21'],
      fw: FACTORY_FW_VERSION,
      hw_rev: HW_REVISION,
      connectivity: { protocol: 'mqtt', version: '3.1.1', brokers: config.brokers.length },
      config: {
        sampling_cadence_ms: config.sampling_cadence_ms,
        send_interval_s: config.send_interval_s,
        hello_interval_s: config.hello_interval_s,
      },
    },
  }
}
