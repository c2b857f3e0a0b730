import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Profiles } from '../profiles.js';
import type { MediaPlane } from '../plane/media-plane.js';
import type { SessionDeps } from '../session/call-session.js';
import type { SessionRegistry } from '../session/session-registry.js';
import type { TrustedSources } from './trusted-sources.js';

/** What the SIP app (`sip-app.ts`) and the request handling it shares with SIPREC are given by the recorder. */
export interface SipAppDeps {
  config: Config;
  log: Logger;
  registry: SessionRegistry;
  /** Where the calls' media runs (RTP ports are taken from its pool). */
  plane: MediaPlane;
  session: SessionDeps;
  /** True while draining: INVITEs for new conf-ids get 503 (a live call's next leg is still taken). */
  draining: () => boolean;
  /** Why new conf-ids are refused with 503 besides draining and maxCalls (a full spool), or null. */
  refuseNew?: () => string | null;
  /** Sessions (conf-ids) taken at once; an INVITE for a new one beyond this gets 503. */
  maxCalls: number;
  /** Counts initial INVITE outcomes, MSML requests and INVITEs refused for their source. */
  observe?: { invite(status: number): void; msml(verb: string, code: number): void; refusedSource?(address: string | undefined): void };
  /** Who may INVITE (sip.allowedSources); default: anyone. */
  trusted?: TrustedSources;
  /** The IVR profiles (per-tenant destinations and format); without them every call uses `session.recording`. */
  profiles?: Pick<Profiles, 'resolve'>;
  /**
   * SIPREC (`siprec/siprec-session.ts`), given when `siprec.enabled`: offered every initial INVITE first. The recorder
   * wires it in; the plain SIP here does not import a feature.
   */
  siprec?: InviteFeature;
}

/** What a feature that answers INVITEs of its own (SIPREC) is given by the SIP app besides the deps. */
export interface InviteFeatureContext {
  deps: SipAppDeps;
  /** Throws CapacityError when no new session may start (draining, full spool, maxCalls). */
  admitNew(): void;
  /** The next SDP session id (o= line). */
  nextSdpSession(): number;
}

/** Answers an INVITE the feature takes (true), or leaves it untouched (false). */
export type InviteFeature = (srf: Srf, ctx: InviteFeatureContext, req: Srf.SrfRequest, res: Srf.SrfResponse, arrivedAt: number) => Promise<boolean>;
