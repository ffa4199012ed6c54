import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { MqttHub } from '../../platform/mqtt/index.ts'
import type { AlertsService } from '../alerts/index.ts'
import type { DevicesService } from '../devices/index.ts'
import { startBackground } from './background.ts'
import { CommandKeys } from './command-keys.ts'
import type { CommandsConfig } from './commands-config.ts'
import { commandKeyRoutes } from './key-routes.ts'
import { CommandOutbox } from './outbox.ts'
import { commandRoutes } from './routes.ts'
import { CommandsService } from './service.ts'

export { canonicalJson } from './canonical-json.ts'
export { COMMAND_NAMES, type CommandName } from './command-params.ts'
export { type CommandEnvelope, signCommand, verifyCommand } from './command-signature.ts'
export type { CommandsConfig } from './commands-config.ts'
export type { OtaStatusReport } from './ota-progress.ts'
export type { AckResult, Command, CommandKey, CommandStatus, OtaProgress, OtaState } from './schemas.ts'
export { type CommandAck, CommandsService } from './service.ts'

export interface CommandsModuleOptions {
  db: Kysely<Database>
  mqtt: MqttHub
  devices: DevicesService
  alerts: AlertsService
  config: CommandsConfig
  log: FastifyBaseLogger
}

/** How long POST /commands waits for a broker's acknowledgement before answering 202. */
const PUBLISH_WAIT_MS = 5000

/**
 * Builds the commands module: its facade (`service`, for the ingest module's acks, OTA reports and
 * hellos) and its plugin (routes; outbox and timeout sweeper started when the app is ready and
 * stopped on close). New devices get their command key at registration.
 */
export function createCommandsModule({ db, mqtt, devices, alerts, config, log }: CommandsModuleOptions) {
  const keys = new CommandKeys(db, devices)
  const outbox = new CommandOutbox({
    db,
    mqtt,
    keys,
    log,
    publishWaitMs: PUBLISH_WAIT_MS,
    validForMs: config.COMMAND_ACK_TIMEOUT_S * 1000,
  })
  const service = new CommandsService({ db, devices, alerts, config, log }, keys, outbox)
  devices.onRegistered(async (device) => {
    // A failure here must not fail the registration: the key is then created on first use.
    await keys.issue(device.id).catch((error) => log.warn({ err: error }, 'command key not issued'))
  })
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(commandRoutes, { commands: service })
    await app.register(commandKeyRoutes, { commands: service })
    let stop: (() => Promise<void>) | undefined
    app.addHook('onReady', async () => {
      stop = startBackground({ commands: service, mqtt, ackTimeoutS: config.COMMAND_ACK_TIMEOUT_S, log })
    })
    app.addHook('onClose', async () => {
      await stop?.()
      await outbox.close()
    })
  }
  return { service, plugin }
}
