/** The part of the configuration the auth module reads: tokens, security headers, CORS, rate limits. */
export interface AuthConfig {
  readonly AUTH_DISABLED: boolean
  readonly ADMIN_TOKEN?: string
  readonly METRICS_TOKEN?: string
  readonly CORS_ORIGINS?: string
  readonly RATE_LIMIT_MAX: number
  readonly RATE_LIMIT_WINDOW_MS: number
}
