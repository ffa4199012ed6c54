/** The part of the configuration the alerts module reads: delivery of alert events. */
export interface AlertsConfig {
  readonly ALERT_WEBHOOK_URLS?: string
  readonly ALERT_WEBHOOK_SECRET?: string
  readonly ALERTMANAGER_URL?: string
  readonly ALERTMANAGER_RESEND_S: number
  readonly ALERT_UPDATE_NOTIFY_S: number
  readonly ALERT_DELIVERY_POLL_MS: number
  readonly ALERT_RETRY_MIN_MS: number
  readonly ALERT_RETRY_MAX_MS: number
  readonly ALERT_DELIVERY_TIMEOUT_MS: number
}
