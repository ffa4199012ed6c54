import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import type { Registry } from 'prom-client'
import type { KeyProvider } from './command-processor.ts'
import { Fleet, type SecretProvider } from './fleet.ts'
import type { MeterTiming } from './meter-options.ts'
import { createSimulatorMetrics } from './metrics.ts'
import { type DeviceDirectory, facadeRegistrar } from './registration.ts'
import type { SimulatorConfig } from './simulator-config.ts'

export type { KeyProvider } from './command-processor.ts'
export { signCommand } from './command-signature.ts'
export type { Phase } from './duty-cycle.ts'
export { Fleet, type FleetStats, type SecretProvider } from './fleet.ts'
export { type MeterConfig, type MeterIdentity, type MeterRegistration, planFleet } from './fleet-plan.ts'
export { MAX_MEASUREMENTS, type Measurement } from './messages.ts'
export type { PhysicsSample } from './meter-physics.ts'
export { createSimulatorMetrics } from './metrics.ts'
export { type DeviceDirectory, httpRegistrar, type Registrar } from './registration.ts'

export type { SimulatedMeter } from './simulated-meter.ts'
export type { SimulatorConfig } from './simulator-config.ts'
export { SUPPLY_SYSTEMS, type SupplySystem, type VoltageSystem } from './supply-systems.ts'

export interface SimulatorModuleOptions {
  config: SimulatorConfig
  /** Every broker each meter publishes to (see simulatorBrokerUrls). */
  brokerUrls: string[]
  log: FastifyBaseLogger
  /** The registry the metrics go on: the app's (fastify-metrics) in plugin mode. */
  metrics?: Registry
  /** Registers the meters before they connect; none = they are expected to be registered. */
  devices?: DeviceDirectory
  /** The command key of a device; without one, commands are accepted unverified. */
  keyFor?: KeyProvider
  /** Where each meter keeps the cmd_ids it executed (replay protection); none = in memory. */
  stateDir?: string
  /** The MQTT password of a device (embedded broker with token auth); none = connect without one. */
  secretFor?: SecretProvider
  /** Tests and load runs: a faster clock, shorter OTA steps and reboot downtime. */
  timing?: Partial<MeterTiming>
}

/** The brokers of the process: MQTT_URL's list, or the embedded broker. */
export function simulatorBrokerUrls(config: { readonly MQTT_URL?: string }, embeddedPort?: number): string[] {
  if (config.MQTT_URL) return config.MQTT_URL.split(',').map((u) => u.trim())
  if (embeddedPort === undefined) throw new Error('simulator: no MQTT_URL and no embedded broker')
  return [`mqtt://127.0.0.1:${embeddedPort}`]
}

/**
 * The simulator module: a fleet of simulated rail power meters that speak only MQTT (protocol v2)
 * to real brokers. The plugin registers the meters and powers them on once the app is ready and
 * stops them gracefully when it closes; `fleet` is the handle to inspect or drive them.
 */
export function createSimulatorModule(options: SimulatorModuleOptions): {
  plugin: FastifyPluginAsync
  fleet: Fleet
} {
  const fleet = new Fleet({
    config: options.config,
    brokerUrls: options.brokerUrls,
    log: options.log,
    metrics: options.metrics ? createSimulatorMetrics(options.metrics) : undefined,
    register: options.devices ? facadeRegistrar(options.devices) : undefined,
    keyFor: options.keyFor,
    stateDir: options.stateDir,
    secretFor: options.secretFor,
    timing: options.timing,
  })
  const plugin: FastifyPluginAsync = async (app) => {
    // Not awaited: registering a large fleet must not hold back readiness.
    app.addHook('onReady', async () => {
      fleet.start().catch((err) => options.log.error({ err }, 'simulator failed to start'))
    })
    // preClose runs before every onClose: the brokers and the database are still there while the
    // meters flush, say offline and disconnect (bounded: a broker that stops acking gets dropped).
    app.addHook('preClose', async () => {
      await fleet.stop()
    })
  }
  return { plugin, fleet }
}
