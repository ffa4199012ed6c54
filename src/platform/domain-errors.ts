/**
 * Failures a caller can act on, in the domain's words and without HTTP: modules throw these, and
 * the one table in errors.ts maps each class to its status and stable error code at the edge.
 */
export class DomainError extends Error {
  constructor(
    message: string,
    /** Extra fields of the error answer (next to its message). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
    this.name = new.target.name
  }
}

/** What was asked for does not exist (a device, command, token, alert, archived object). */
export class NotFoundError extends DomainError {}

/** The request contradicts the current state (a device id taken, a command already acknowledged). */
export class ConflictError extends DomainError {}

/** The input is wrong in a way the schemas cannot say (a time range backwards, an empty update). */
export class InvalidInputError extends DomainError {}
