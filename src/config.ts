/**
 * The whole configuration of the process, read once from the environment at start (src/config/).
 * Every variable is documented in docs/CONFIGURATION.md (npm run docs:config); nothing else reads process.env.
 * Entry-level code imports it from here; modules declare the slice they need and are handed it by app.ts.
 */
export { ConfigError } from './config/config-error.ts'
export { loadConfig } from './config/load.ts'
export { type Config, ConfigSchema } from './config/schema.ts'
