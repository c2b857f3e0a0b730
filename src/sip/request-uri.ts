import { SignalingError } from '../errors.js';
import type { RecordingUri } from '../session/recording-uri.js';

/*
 * What SIP Server (through Resource Manager) puts into the Request-URI of a recording INVITE:
 * `sip:msml=<conf-id>@host;dn=<DN>;record;tenant-dbid=1;media-service=record;gvp-tenant-id=<tenant>.<profile>`
 */

export type { RecordingUri };

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new SignalingError(`Request-URI: bad escape in ${what}`, { sipStatus: 400 });
  }
}

/** Parses an RM-style recording Request-URI. Throws SignalingError (400/404) when it cannot be used. */
export function parseRecordingUri(uri: string): RecordingUri {
  const m = /^sips?:([^@;?]+)@([^;?]+)((?:;[^?]*)?)(?:\?.*)?$/i.exec(uri.trim());
  if (!m) throw new SignalingError(`Request-URI is not a SIP URI with a user part: ${uri}`, { sipStatus: 400 });
  const [, user, hostport, paramText] = m;
  const userDecoded = decode(user, 'user part');
  let confId: string | null;
  if (/^msml$/i.test(userDecoded)) confId = null;
  else {
    const um = /^msml=(.+)$/i.exec(userDecoded);
    if (!um) throw new SignalingError(`Request-URI user part is not msml=<conf-id>: ${userDecoded}`, { sipStatus: 404 });
    confId = um[1];
  }
  let host = hostport;
  let port: number | null = null;
  const hp = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostport);
  if (!hp) throw new SignalingError(`Request-URI host is malformed: ${hostport}`, { sipStatus: 400 });
  host = hp[1];
  if (hp[2] !== undefined) {
    port = Number(hp[2]);
    if (port < 1 || port > 65535) throw new SignalingError(`Request-URI port out of range: ${hp[2]}`, { sipStatus: 400 });
  }
  const params: Record<string, string> = {};
  for (const part of paramText.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq), 'parameter name').toLowerCase();
    params[name] = eq < 0 ? '' : decode(part.slice(eq + 1), `parameter ${name}`);
  }
  const tenantId = params['gvp-tenant-id'];
  let tenant: string | null = null;
  let ivrProfile: string | null = null;
  if (tenantId !== undefined && tenantId !== '') {
    const dot = tenantId.indexOf('.');
    tenant = dot < 0 ? tenantId : tenantId.slice(0, dot);
    ivrProfile = dot < 0 ? null : tenantId.slice(dot + 1);
  }
  const str = (k: string): string | null => (params[k] === undefined || params[k] === '' ? null : params[k]);
  return {
    confId,
    host,
    port,
    dn: str('dn'),
    record: 'record' in params,
    tenantDbid: str('tenant-dbid'),
    mediaService: str('media-service'),
    tenant,
    ivrProfile,
    params,
  };
}

/** The decoded user part of a SIP URI, or null (no user part, a bad escape). Pure. */
export function requestUriUser(uri: string): string | null {
  const m = /^sips?:([^@;?]+)@/i.exec(uri.trim());
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

/** Whether a Request-URI is an MSML one (`sip:msml@…`, `sip:msml=<conf-id>@…`). Pure. */
export function isMsmlUri(uri: string): boolean {
  return /^msml(=|$)/i.test(requestUriUser(uri) ?? '');
}

/**
 * What a SIPREC recording session's recording is for: no conf-id or DN (SIP Server is not involved), the tenant and
 * IVR profile of the profile it uses (`<Tenant>.<Profile>`, null for none), the Request-URI's host. Pure.
 */
export function siprecRecordingUri(uri: string, profileName: string | null): RecordingUri {
  const host = /^sips?:(?:[^@;?]*@)?(\[[^\]]+\]|[^:;?]+)(?::(\d+))?/i.exec(uri.trim());
  const dot = profileName === null || profileName === 'default' ? -1 : profileName.indexOf('.');
  return {
    confId: null,
    host: host?.[1] ?? '',
    port: host?.[2] ? Number(host[2]) : null,
    dn: null,
    record: true,
    tenantDbid: null,
    mediaService: 'siprec',
    tenant: dot < 0 ? null : profileName!.slice(0, dot),
    ivrProfile: dot < 0 ? null : profileName!.slice(dot + 1),
    params: {},
  };
}
