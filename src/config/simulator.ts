import { Type } from 'typebox'
import { oneOf } from './schema-helpers.ts'

/** The built-in simulator (module simulator). */
export const simulatorSettings = {
  SIMULATOR_ENABLED: Type.Boolean({
    description: 'run simulated meters inside the server (they speak only MQTT)',
    default: false,
  }),
  SIMULATOR_DEVICES: Type.Integer({
    description: 'number of simulated meters',
    minimum: 0,
    maximum: 100000,
    default: 3,
  }),
  SIMULATOR_AC_SHARE: Type.Number({
    description: 'share of AC meters (the rest are DC)',
    minimum: 0,
    maximum: 1,
    default: 0.34,
  }),
  SIMULATOR_SEND_INTERVAL_S: Type.Integer({
    description: 'telemetry send interval of the simulated meters',
    minimum: 1,
    maximum: 3600,
    default: 10,
  }),
  SIMULATOR_HELLO_INTERVAL_S: Type.Integer({
    description: 'hello interval of the simulated meters',
    minimum: 5,
    maximum: 3600,
    default: 30,
  }),
  SIMULATOR_SAMPLING_MS: Type.Integer({
    description: 'sampling cadence of the simulated meters',
    minimum: 100,
    maximum: 60000,
    default: 1000,
  }),
  SIMULATOR_ENCODING: oneOf(
    ['json', 'binary'],
    'json',
    'how the simulated meters encode telemetry: JSON, or the binary datagram of PROTOCOL.md',
  ),
  SIMULATOR_SEED: Type.Integer({
    description: 'seed of the simulation (reproducible runs)',
    minimum: 0,
    maximum: 2 ** 31 - 1,
    default: 1,
  }),
  SIMULATOR_DUPLICATE_RATE: Type.Number({
    description: 'fault injection: share of messages sent twice',
    minimum: 0,
    maximum: 1,
    default: 0,
  }),
  SIMULATOR_DROP_RATE: Type.Number({
    description: 'fault injection: share of messages never sent (seq gaps)',
    minimum: 0,
    maximum: 1,
    default: 0,
  }),
  SIMULATOR_REORDER_RATE: Type.Number({
    description: 'fault injection: share of messages sent out of order',
    minimum: 0,
    maximum: 1,
    default: 0,
  }),
  SIMULATOR_REBOOT_EVERY_S: Type.Integer({
    minimum: 0,
    maximum: 864000,
    default: 0,
    description: '0 = never',
  }),
  SIMULATOR_ID_PREFIX: Type.String({
    description: 'prefix of the simulated device ids (<prefix>-dc-0001)',
    pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,39}$',
    default: 'sim',
  }),
}
