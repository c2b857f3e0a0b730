/**
 * The few named errors of msml-recorder. Each carries what its callers need to answer:
 * a SIP status for signaling, an MSML `<result response>` code for MSML requests, and
 * whether a delivery job should retry.
 */
export class RecorderError extends Error {
  /** SIP status to answer an initial request with. */
  readonly sipStatus: number;
  /** MSML result code (RFC 5707 style) to answer an MSML request with. */
  readonly msmlCode: number;
  /** Whether a job failing with this error should be retried. */
  readonly retryable: boolean;

  constructor(message: string, opts: { sipStatus?: number; msmlCode?: number; retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.sipStatus = opts.sipStatus ?? 500;
    this.msmlCode = opts.msmlCode ?? 500;
    this.retryable = opts.retryable ?? false;
  }
}

/** Configuration that cannot be used; raised once at start. */
export class ConfigError extends RecorderError {}

/** An SDP we cannot parse (400) or cannot answer (488). */
export class SdpError extends RecorderError {}

/** An INVITE that is not an MSML recording request (e.g. malformed Request-URI). */
export class SignalingError extends RecorderError {}

/** An MSML body that is malformed, unsupported or addresses something unknown. */
export class MsmlError extends RecorderError {
  constructor(message: string, msmlCode: number) {
    super(message, { msmlCode, sipStatus: 200 });
  }
}

/** A request body over sip.maxBodyBytes: 413 before anything parses it. */
export class BodyTooLargeError extends SignalingError {
  constructor(message: string) {
    super(message, { sipStatus: 413, msmlCode: 400 });
  }
}

/** No capacity left (RTP ports, draining): answer 503. */
export class CapacityError extends RecorderError {
  constructor(message: string) {
    super(message, { sipStatus: 503, msmlCode: 500, retryable: true });
  }
}

/** Local storage failed (disk full, unwritable spool). */
export class SpoolError extends RecorderError {
  constructor(message: string, cause?: unknown) {
    super(message, { sipStatus: 500, msmlCode: 500, retryable: true, cause });
  }
}

/** An MP3 encoder worker died under a request; the recording may continue on a new encoder. */
export class EncoderCrashError extends RecorderError {
  constructor(message: string) {
    super(message, { sipStatus: 500, msmlCode: 500, retryable: true });
  }
}

/** The media worker a call's media ran on died: the call ends, its recording is finished from the spool. */
export class MediaWorkerLostError extends RecorderError {
  constructor(message: string) {
    super(message, { sipStatus: 503, msmlCode: 500, retryable: true });
  }
}

/**
 * A delivery step (WebDAV, metadata POST) failed. Network errors, 5xx, 408 and 429 are retried, and so is a MKCOL's
 * 404/409 (a collection above is missing: a store being set up, or one removed under us); other 4xx are not.
 */
export class DeliveryError extends RecorderError {
  constructor(
    message: string,
    readonly stage: 'mkcol' | 'put' | 'metadata' | 'spool',
    readonly status: number | null,
    cause?: unknown,
  ) {
    const missingParent = stage === 'mkcol' && (status === 404 || status === 409);
    super(message, { retryable: status === null || status >= 500 || status === 408 || status === 429 || missingParent, cause });
  }
}
