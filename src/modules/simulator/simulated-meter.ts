import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BrokerLink } from './broker-link.ts'
import type { ConfigChange, OtaRequest } from './command-params.ts'
import { CommandProcessor, type CommandTarget } from './command-processor.ts'
import { FaultInjector } from './fault-injector.ts'
import { FACTORY_FW_VERSION, type MeterConfig, type MeterIdentity } from './fleet-plan.ts'
import {
  binaryTelemetryMessage,
  type CommandResult,
  chunkMeasurements,
  envelope,
  type MessageType,
  type Outgoing,
  statusMessage,
} from './messages.ts'
import type { MeterOptions } from './meter-options.ts'
import { MeterPhysics } from './meter-physics.ts'
import { runOta } from './ota-flow.ts'
import { Sampler } from './sampler.ts'
import { mixSeed, SeededRandom } from './seeded-random.ts'
import { SeenCommands } from './seen-commands.ts'
import { SequenceCounter } from './sequence.ts'

const QUEUE_CAPACITY = 1000
const DRAIN_TIMEOUT_MS = 2000

const brokerUrl = ({ host, port }: { host: string; port: number }) =>
  `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`

/**
 * One simulated power meter: its own MQTT connection to every broker, the protocol v2 messages
 * (one seq across all types), sampling of its physics, the fault knobs and the commands.
 * A reboot or a stop is graceful: buffered samples go out, then a retained `offline` status, then
 * DISCONNECT — the LWT is left for abnormal loss of the connection.
 */
export class SimulatedMeter implements CommandTarget {
  readonly deviceId: string
  config: MeterConfig
  fwVersion = FACTORY_FW_VERSION
  links: BrokerLink[] = []
  /** The MQTT password (username = device id) its connections present; none = anonymous. */
  mqttPassword: string | undefined
  readonly physics: MeterPhysics
  private readonly seq = new SequenceCounter()
  private readonly faults: FaultInjector
  private readonly sampler: Sampler
  private readonly commands: CommandProcessor
  private state: 'off' | 'on' | 'rebooting' | 'stopped' = 'off'
  private transition: Promise<void> = Promise.resolve()
  private boot = new AbortController()
  private timers: NodeJS.Timeout[] = []
  private rebootTimer: NodeJS.Timeout | undefined
  private bootedAt = 0
  private bootHelloSent = false
  private otaCmdId: string | undefined
  private wasConnected = false

  constructor(private readonly options: MeterOptions) {
    const { identity, seed } = options
    this.deviceId = identity.device_id
    this.config = { ...options.factory, brokers: [...options.factory.brokers] }
    this.physics = new MeterPhysics(identity.system, new SeededRandom(mixSeed(seed, identity.index, 1)))
    this.sampler = new Sampler(this.physics)
    this.faults = new FaultInjector(options.faults, new SeededRandom(mixSeed(seed, identity.index, 2)))
    const seen = options.stateDir ? join(options.stateDir, 'commands', `${this.deviceId}.json`) : undefined
    this.commands = new CommandProcessor(
      this,
      options.keyFor,
      options.events.command,
      options.log,
      new SeenCommands(seen),
    )
  }

  get identity(): MeterIdentity {
    return this.options.identity
  }

  get connected(): boolean {
    return this.links.some((l) => l.connected)
  }

  get uptime_s(): number {
    return Math.floor(((Date.now() - this.bootedAt) * this.options.timing.timeScale) / 1000)
  }

  get otaRunning(): boolean {
    return this.otaCmdId !== undefined
  }

  /** Power on: connect to every broker and start sampling. */
  start(): void {
    if (this.state !== 'off') return
    this.state = 'on'
    this.powerOn()
  }

  /** Power off for good (graceful). */
  async stop(): Promise<void> {
    const previous = this.state
    this.state = 'stopped'
    await this.transition
    if (previous === 'on') await this.powerOff()
  }

  /** Graceful reboot: flush, offline, disconnect, a short downtime, then seq 0, online, hello. */
  reboot(reason: string): Promise<void> {
    if (this.state !== 'on') return this.transition
    this.state = 'rebooting'
    this.options.log.debug({ device_id: this.deviceId, reason }, 'simulated meter rebooting')
    this.transition = (async () => {
      await this.powerOff()
      await sleep(this.options.timing.rebootDowntimeMs / this.options.timing.timeScale)
      if (this.state !== 'rebooting') return
      this.state = 'on'
      this.powerOn()
    })()
    return this.transition
  }

  // --- what commands do (CommandTarget) ---

  ack(cmdId: string, result: CommandResult, detail?: string): void {
    this.emit('command_ack', { cmd_id: cmdId, result, ...(detail ? { detail } : {}) }, false)
  }

  sendStatusHello(): void {
    this.emit('hello', this.helloBody(), false)
  }

  applyConfig(change: ConfigChange): void {
    const { brokers, ...intervals } = change
    this.config = { ...this.config, ...intervals }
    if (intervals.send_interval_s !== undefined || intervals.hello_interval_s !== undefined) this.schedule()
    if (brokers) void this.switchBrokers(brokers.map(brokerUrl))
  }

  factoryReset(): void {
    this.config = { ...this.options.factory, brokers: [...this.options.factory.brokers] }
    void this.reboot('factory reset')
  }

  startOta(cmdId: string, request: OtaRequest): void {
    this.otaCmdId = cmdId
    const step = this.options.timing.otaStepMs / this.options.timing.timeScale
    const target = {
      otaStatus: (body: Record<string, unknown>) => this.emit('ota_status', body, false),
      installAndReboot: (fwVersion: string) => {
        this.fwVersion = fwVersion
        void this.reboot('firmware upgrade')
      },
    }
    runOta(target, cmdId, request, step, this.boot.signal)
      .catch((error) => this.options.log.error({ err: error, device_id: this.deviceId }, 'OTA flow failed'))
      .finally(() => {
        if (this.otaCmdId === cmdId) this.otaCmdId = undefined
      })
  }

  // --- power cycle ---

  private powerOn(): void {
    this.seq.reset()
    this.boot = new AbortController()
    this.bootedAt = Date.now()
    this.sampler.restart(this.bootedAt)
    this.bootHelloSent = false
    this.links = this.config.brokers.map((url) => this.connect(url))
    this.schedule()
    const every = this.options.rebootEvery_s
    if (every > 0)
      this.rebootTimer = setTimeout(() => void this.reboot('scheduled'), this.realMs(every * 1000))
  }

  private async powerOff(): Promise<void> {
    this.boot.abort()
    for (const t of this.timers.splice(0)) clearInterval(t)
    clearTimeout(this.rebootTimer)
    this.otaCmdId = undefined
    this.sendTelemetry()
    for (const message of this.faults.flush()) this.publish(message)
    const links = this.links
    for (const link of links) if (link.connected) link.enqueue(statusMessage(this.deviceId, 'offline'))
    await Promise.all(links.map((l) => l.drain(DRAIN_TIMEOUT_MS)))
    await Promise.all(links.map((l) => l.close()))
    if (this.links === links) this.links = []
    this.connectionChanged()
  }

  private connect(url: string): BrokerLink {
    const id = this.deviceId
    const { events, log } = this.options
    const link = new BrokerLink(url, {
      url,
      clientId: id,
      password: this.mqttPassword,
      will: () => statusMessage(id, 'offline'),
      online: () => statusMessage(id, 'online'),
      capacity: QUEUE_CAPACITY,
      log,
      events: {
        command: (payload) => {
          this.commands.handle(payload).catch((err) => log.error({ err, device_id: id }, 'command failed'))
        },
        connectionChanged: () => {
          this.connectionChanged()
          // The boot hello announces the running firmware (how an OTA result becomes visible).
          if (link.connected && !this.bootHelloSent) {
            this.bootHelloSent = true
            this.sendStatusHello()
          }
        },
        published: events.published,
        acked: events.acked,
      },
    })
    return link
  }

  private async switchBrokers(urls: string[]): Promise<void> {
    const signal = this.boot.signal
    this.config = { ...this.config, brokers: urls }
    await Promise.all(this.links.map((l) => l.drain(DRAIN_TIMEOUT_MS)))
    if (signal.aborted) return
    const leaving = this.links.filter((l) => !urls.includes(l.url))
    const staying = this.links.filter((l) => urls.includes(l.url))
    const joining = urls.filter((u) => !staying.some((l) => l.url === u)).map((u) => this.connect(u))
    this.links = [...staying, ...joining]
    for (const link of leaving) if (link.connected) link.enqueue(statusMessage(this.deviceId, 'offline'))
    await Promise.all(leaving.map((l) => l.drain(DRAIN_TIMEOUT_MS)))
    await Promise.all(leaving.map((l) => l.close()))
    this.connectionChanged()
  }

  private connectionChanged(): void {
    const now = this.connected
    if (now === this.wasConnected) return
    this.wasConnected = now
    this.options.events.connection(now)
  }

  // --- timers and messages ---

  private realMs(simulatedMs: number): number {
    return simulatedMs / this.options.timing.timeScale
  }

  /** (Re)starts the send timer and, per REQ-HELLO-001, the hello timer only when send > hello. */
  private schedule(): void {
    for (const t of this.timers.splice(0)) clearInterval(t)
    const { send_interval_s, hello_interval_s } = this.config
    this.timers.push(setInterval(() => this.sendTelemetry(), this.realMs(send_interval_s * 1000)))
    if (send_interval_s > hello_interval_s) {
      const hello = () => this.emit('hello', this.helloBody(), true)
      this.timers.push(setInterval(hello, this.realMs(hello_interval_s * 1000)))
    }
  }

  /** Samples everything due since the last datagram and sends it, split at 200 measurements. */
  private sendTelemetry(): void {
    const cadenceMs = this.config.sampling_cadence_ms
    const measurements = this.sampler.collect(Date.now(), cadenceMs, this.realMs(cadenceMs))
    for (const chunk of chunkMeasurements(measurements, this.sampler.perSample)) {
      if (this.options.encoding === 'binary')
        this.send(binaryTelemetryMessage(this.deviceId, this.seq.next(), chunk), true)
      else this.emit('telemetry', { measurements: chunk }, true)
    }
  }

  private helloBody(): Record<string, unknown> {
    return {
      fw_version: this.fwVersion,
      uptime_s: this.uptime_s,
      broker_connections: this.links.filter((l) => l.connected).length,
      buf_usage_pct: Math.max(0, ...this.links.map((l) => l.usagePct)),
      // The electronics run a few degrees above the enclosure.
      temp_internal: Number((this.sampler.temperature + 6).toFixed(1)),
    }
  }

  /** Assigns the next seq and hands the message (through the fault knobs) to every broker. */
  private emit(type: MessageType, body: Record<string, unknown>, faultable: boolean): void {
    this.send(envelope(this.deviceId, type, this.seq.next(), body), faultable)
  }

  /** Hands a message (through the fault knobs) to every broker. */
  private send(message: Outgoing, faultable: boolean): void {
    for (const out of this.faults.route(message, faultable)) this.publish(out)
  }

  private publish(message: Outgoing): void {
    for (const link of this.links) link.enqueue(message)
  }
}
