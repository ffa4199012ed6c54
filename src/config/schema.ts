import { type Static, Type } from 'typebox'
import { alertsRetentionSettings } from './alerts-retention.ts'
import { databaseSettings } from './database.ts'
import { httpSettings } from './http.ts'
import { ingestSettings } from './ingest.ts'
import { mqttSettings } from './mqtt.ts'
import { simulatorSettings } from './simulator.ts'
import { storageSettings } from './storage.ts'

/**
 * Every environment variable the process reads, one section per concern. The order of the sections
 * is the order of the variables within each part of docs/CONFIGURATION.md (npm run docs:config).
 */
export const ConfigSchema = Type.Object({
  ...httpSettings,
  ...databaseSettings,
  ...mqttSettings,
  ...storageSettings,
  ...ingestSettings,
  ...alertsRetentionSettings,
  ...simulatorSettings,
})

export type Config = Readonly<Static<typeof ConfigSchema>>
