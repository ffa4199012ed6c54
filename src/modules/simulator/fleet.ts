import type { FastifyBaseLogger } from 'fastify'
import { DEVICE_KINDS } from '../../protocol/index.ts'
import type { KeyProvider } from './command-processor.ts'
import { type MeterConfig, planFleet, provisionedConfig, registrationOf } from './fleet-plan.ts'
import type { CommandResult, PublishedType } from './messages.ts'
import type { MeterTiming } from './meter-options.ts'
import type { SimulatorMetrics } from './metrics.ts'
import type { Registrar } from './registration.ts'
import { SimulatedMeter } from './simulated-meter.ts'
import type { SimulatorConfig } from './simulator-config.ts'

/** The MQTT password of a meter (username = device id), or undefined to connect without one. */
export type SecretProvider = (deviceId: string) => Promise<string | undefined>

export interface FleetOptions {
  config: SimulatorConfig
  brokerUrls: string[]
  log: FastifyBaseLogger
  metrics?: SimulatorMetrics
  /** Registers each meter before it first connects; none = the meters are registered elsewhere. */
  register?: Registrar
  keyFor?: KeyProvider
  /** Where each meter keeps the cmd_ids it executed (replay protection); none = in memory. */
  stateDir?: string
  /** Asked once per meter after registration, before it first connects. */
  secretFor?: SecretProvider
  timing?: Partial<MeterTiming>
  /** Meters registered and powered on at the same time while the fleet starts. */
  startConcurrency?: number
}

export interface FleetStats {
  devices: number
  connected: number
  /** Handed to a broker connection, one per broker, by type. */
  published: Record<PublishedType, number>
  /** Acknowledged by the broker (PUBACK / PUBCOMP). */
  acked: number
  /** Publishes that ended in an error, and messages dropped because a queue was full. */
  failed: number
  overflowed: number
  commands: number
}

export const DEFAULT_TIMING: MeterTiming = { timeScale: 1, otaStepMs: 500, rebootDowntimeMs: 1000 }

/**
 * The simulated fleet: plans the meters from the SIMULATOR_* configuration, registers each one,
 * powers them on a few at a time, counts what they send, and stops them gracefully.
 */
export class Fleet {
  readonly meters: SimulatedMeter[]
  private readonly register: Registrar | undefined
  private readonly secretFor: SecretProvider | undefined
  private readonly concurrency: number
  private readonly log: FastifyBaseLogger
  private readonly metrics: SimulatorMetrics | undefined
  private readonly factory: MeterConfig
  private readonly counts = {
    connected: 0,
    published: Object.fromEntries(DEVICE_KINDS.map((kind) => [kind, 0])) as Record<PublishedType, number>,
    acked: 0,
    commands: 0,
  }
  private starting: Promise<void> | undefined
  private stopping = false

  constructor(options: FleetOptions) {
    const { config } = options
    this.log = options.log
    this.metrics = options.metrics
    this.register = options.register
    this.secretFor = options.secretFor
    this.concurrency = options.startConcurrency ?? 20
    const timing = { ...DEFAULT_TIMING, ...options.timing }
    const factory = provisionedConfig(config, options.brokerUrls)
    this.factory = factory
    const events = {
      published: (type: PublishedType) => {
        this.counts.published[type]++
        this.metrics?.sent.inc({ type })
      },
      acked: () => {
        this.counts.acked++
      },
      connection: (connected: boolean) => {
        this.counts.connected += connected ? 1 : -1
        this.metrics?.connected.set(this.counts.connected)
      },
      command: (cmd: string, result: CommandResult) => {
        this.counts.commands++
        this.metrics?.commands.inc({ cmd, result })
      },
    }
    this.meters = planFleet(config).map(
      (identity) =>
        new SimulatedMeter({
          identity,
          factory,
          seed: config.SIMULATOR_SEED,
          faults: {
            duplicate: config.SIMULATOR_DUPLICATE_RATE,
            drop: config.SIMULATOR_DROP_RATE,
            reorder: config.SIMULATOR_REORDER_RATE,
          },
          rebootEvery_s: config.SIMULATOR_REBOOT_EVERY_S,
          encoding: config.SIMULATOR_ENCODING === 'binary' ? 'binary' : 'json',
          timing,
          keyFor: options.keyFor,
          stateDir: options.stateDir,
          events,
          log: options.log,
        }),
    )
  }

  meter(deviceId: string): SimulatedMeter | undefined {
    return this.meters.find((m) => m.deviceId === deviceId)
  }

  /** Registers and powers on every meter; resolves when all are on (connections follow by themselves). */
  start(): Promise<void> {
    this.starting ??= this.startAll()
    return this.starting
  }

  /** Stops starting more, then powers every meter off gracefully. */
  async stop(): Promise<void> {
    this.stopping = true
    await this.starting?.catch(() => undefined)
    await Promise.all(this.meters.map((m) => m.stop()))
  }

  stats(): FleetStats {
    const links = this.meters.flatMap((m) => m.links)
    return {
      devices: this.meters.length,
      connected: this.counts.connected,
      published: { ...this.counts.published },
      acked: this.counts.acked,
      failed: links.reduce((n, l) => n + l.failed, 0),
      overflowed: links.reduce((n, l) => n + l.overflowed, 0),
      commands: this.counts.commands,
    }
  }

  private async startAll(): Promise<void> {
    let next = 0
    const worker = async () => {
      while (!this.stopping && next < this.meters.length) {
        const meter = this.meters[next++] as SimulatedMeter
        if (this.register) {
          try {
            await this.register(registrationOf(meter.identity, this.factory))
          } catch (error) {
            this.log.warn({ err: error, device_id: meter.deviceId }, 'simulated meter not registered')
          }
        }
        if (this.secretFor) {
          try {
            meter.mqttPassword = await this.secretFor(meter.deviceId)
          } catch (error) {
            this.log.warn({ err: error, device_id: meter.deviceId }, 'simulated meter got no MQTT secret')
          }
        }
        if (!this.stopping) meter.start()
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.concurrency, this.meters.length) }, worker))
  }
}
