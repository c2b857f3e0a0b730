/**
 * MSML `<result response>` codes we answer with. RFC 5707 §10 defines 3-digit codes (200 = OK, 4xx request
 * errors, 5xx server errors); its exact table could not be read when this was written (see
 * shared/reference/genesys-gir-notes.md §2.6), so every code lives here and nowhere else. 400 for a parse
 * error follows msml-samples/22; 402 for "unsupported" follows a media server's published answers.
 * SIP Server only distinguishes 200 from non-200 and logs the `<description>`.
 */
export const MsmlCode = {
  OK: 200,
  /** Malformed XML or a body that is not MSML. */
  BAD_REQUEST: 400,
  /** Well-formed MSML that asks for something this recorder does not do. */
  UNSUPPORTED: 402,
  /** The request addresses a dialog or conference that does not exist. */
  NO_SUCH_OBJECT: 405,
  /** A mandatory attribute is missing or has a bad value. */
  BAD_ATTRIBUTE: 407,
  /** The object already exists (a second `<dialogstart>` for a running recording). */
  ALREADY_EXISTS: 409,
  /** We failed (storage, encoder). */
  INTERNAL: 500,
} as const;
