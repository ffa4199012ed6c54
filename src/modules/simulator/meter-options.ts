import type { FastifyBaseLogger } from 'fastify'
import type { KeyProvider } from './command-processor.ts'
import type { FaultRates } from './fault-injector.ts'
import type { MeterConfig, MeterIdentity } from './fleet-plan.ts'
import type { CommandResult, PublishedType } from './messages.ts'

/** What a SimulatedMeter is built with: its identity, timing, fault rates and event sinks. */
export interface MeterTiming {
  /** Real time runs this many times faster than the configured intervals (CLI --rate-multiplier). */
  timeScale: number
  /** One step of the OTA progress (ms of simulated time). */
  otaStepMs: number
  /** How long a reboot keeps the meter off the network (ms of simulated time). */
  rebootDowntimeMs: number
}

export interface MeterEvents {
  published(type: PublishedType): void
  acked(type: PublishedType): void
  connection(connected: boolean): void
  command(cmd: string, result: CommandResult): void
}

export interface MeterOptions {
  identity: MeterIdentity
  /** What the meter was provisioned with; factory_reset returns to it. */
  factory: MeterConfig
  seed: number
  faults: FaultRates
  rebootEvery_s: number
  /** How telemetry goes on the wire (PROTOCOL.md: JSON, or the binary datagram). */
  encoding: 'json' | 'binary'
  timing: MeterTiming
  keyFor?: KeyProvider
  /** Where each meter keeps the cmd_ids it executed (replay protection); none = in memory. */
  stateDir?: string
  events: MeterEvents
  log: FastifyBaseLogger
}
