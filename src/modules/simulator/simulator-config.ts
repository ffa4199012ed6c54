/** The SIMULATOR_* part of the configuration (app.ts and the simulate CLI hand it the whole Config). */
export interface SimulatorConfig {
  readonly SIMULATOR_DEVICES: number
  readonly SIMULATOR_AC_SHARE: number
  readonly SIMULATOR_SEND_INTERVAL_S: number
  readonly SIMULATOR_HELLO_INTERVAL_S: number
  readonly SIMULATOR_SAMPLING_MS: number
  /** 'json' or 'binary' (the schema allows no other). */
  readonly SIMULATOR_ENCODING: string
  readonly SIMULATOR_SEED: number
  readonly SIMULATOR_DUPLICATE_RATE: number
  readonly SIMULATOR_DROP_RATE: number
  readonly SIMULATOR_REORDER_RATE: number
  readonly SIMULATOR_REBOOT_EVERY_S: number
  readonly SIMULATOR_ID_PREFIX: string
}
