/** What a recording session is for, as the RM Request-URI says it (`sip/request-uri.ts` parses it). */
export interface RecordingUri {
  /** The MSML conference id shared by every dialog of one recorded call; null for a bare `sip:msml@host`. */
  confId: string | null;
  host: string;
  port: number | null;
  /** The recorded DN (`dn=`). */
  dn: string | null;
  /** The bare `record` flag. */
  record: boolean;
  tenantDbid: string | null;
  mediaService: string | null;
  /** `gvp-tenant-id` before the first dot. */
  tenant: string | null;
  /** `gvp-tenant-id` after the first dot: the IVR profile name. */
  ivrProfile: string | null;
  /** Every URI parameter, decoded; flags have the value `''`. */
  params: Record<string, string>;
}
