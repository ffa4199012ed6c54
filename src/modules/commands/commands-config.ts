/** The part of the configuration the commands module reads. */
export interface CommandsConfig {
  readonly COMMAND_ACK_TIMEOUT_S: number
}
