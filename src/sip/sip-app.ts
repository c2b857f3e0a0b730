import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import { CapacityError, RecorderError, SignalingError } from '../errors.js';
import type { PartyRole } from '../plane/plane-protocol.js';
import { CallSession } from '../session/call-session.js';
import { Leg } from '../session/leg.js';
import { parseRecordingUri } from './request-uri.js';
import { arrivalWallMs } from './arrival-time.js';
import type { InviteFeatureContext, SipAppDeps } from './sip-app-deps.js';
import { answerInvite, checkBodySize, contentType, cseqOf, legDialog, refuseInvite, warning } from './sip-request.js';
import { isOfferless, negotiate, renderAnswer, renderOffer, type NegotiatedMedia, type SdpLocal } from './sdp-answer.js';

/** MSML content types we accept on INFO (reply with the request's own type). */
export const MSML_CONTENT_TYPES = new Set(['application/vnd.radisys.msml+xml', 'application/msml+xml', 'application/xml', 'text/xml']);

type SrfReq = Srf.SrfRequest;
type SrfRes = Srf.SrfResponse;

/**
 * Registers the recorder's SIP handlers on drachtio-srf: INVITE (with an offer, or offer-less for 3PCC), OPTIONS,
 * and per dialog INFO (MSML), re-INVITE, ACK and BYE. Every failure becomes a SIP or MSML answer.
 */
export function attachSipApp(srf: Srf, deps: SipAppDeps): void {
  const { config, log } = deps;
  let sdpSession = Math.floor(Date.now() / 1000);

  // an SBC's or RM's health check: 200 while a new session would be taken, else 503 saying why
  srf.use('options', (req: SrfReq, res: SrfRes) => {
    const why = deps.draining() ? 'draining' : (deps.refuseNew?.() ?? (deps.registry.size >= deps.maxCalls ? `at capacity (${deps.maxCalls} calls)` : null));
    if (why) res.send(503, { headers: { ...warning(why), 'Retry-After': '5' } });
    else res.send(200);
  });

  // An INFO or BYE that drachtio hands us outside a dialog belongs to no dialog we have.
  srf.use('info', (req: SrfReq, res: SrfRes) => {
    log.info({ callId: req.get('Call-ID') }, 'INFO for an unknown dialog: 481');
    res.send(481);
  });

  /** Throws CapacityError when a new session (conf-id, SIPREC session) may not start now. */
  const admitNew = (): void => {
    if (deps.draining()) throw new CapacityError('draining: not taking new calls');
    const refusal = deps.refuseNew?.() ?? null;
    if (refusal) throw new CapacityError(refusal);
    if (deps.registry.size >= deps.maxCalls) throw new CapacityError(`at capacity (${deps.maxCalls} calls)`);
  };
  const feature: InviteFeatureContext = { deps, admitNew, nextSdpSession: () => sdpSession++ };

  srf.invite(async (req: SrfReq, res: SrfRes) => {
    // an untrusted source gets nothing allocated: no session, no port, no body parsed
    if (deps.trusted && !deps.trusted.allows(req.source_address)) {
      log.warn({ source: req.source_address, callId: req.get('Call-ID') }, 'INVITE from a source not in sip.allowedSources: 403');
      deps.observe?.refusedSource?.(req.source_address);
      deps.observe?.invite(403);
      res.send(403, { headers: warning(`source ${req.source_address} is not in sip.allowedSources`) });
      return;
    }
    const arrivedAt = arrivedAtOf(req);
    const callId = req.get('Call-ID');
    const clog = log.child({ callId });
    let session: CallSession | null = null;
    let openedLeg: number | null = null;
    let endAttempt: (() => void) | null = null;
    try {
      tooLarge(req);
      if (deps.siprec && (await deps.siprec(srf, feature, req, res, arrivedAt))) return;
      const uri = parseRecordingUri(req.uri);
      const callUUID = req.get('X-Genesys-CallUUID') || null;
      const key = uri.confId ?? callId;
      session = deps.registry.get(key) ?? null;
      if (!session) admitNew();
      if (!session) {
        const profileName = uri.tenant !== null && uri.ivrProfile !== null ? `${uri.tenant}.${uri.ivrProfile}` : null;
        const profile = deps.profiles ? deps.profiles.resolve(profileName) : null;
        if (deps.profiles && !profile) throw new SignalingError(`unknown IVR profile ${profileName ?? '(none in the Request-URI)'} (profiles.requireKnown)`, { sipStatus: 404 });
        const bindings = { conf: key, callUUID, profile: profile?.name };
        session = new CallSession(key, uri, callUUID, deps.session, log.child(bindings), profile, deps.plane.session(key, bindings));
        deps.registry.add(session);
      }
      endAttempt = session.beginAttempt();
      const offerless = isOfferless(req.body);
      const negotiated: NegotiatedMedia[] | null = offerless ? null : negotiate(req.body, config.rtp.codecs);
      const count = negotiated ? negotiated.length : 1;
      const legRole = session.nextRole();
      const s = session;
      const roleOf = (i: number): PartyRole => (count > 1 ? (i === 0 ? 'other' : 'recordDN') : legRole);
      const slots = Array.from({ length: count }, (_, i) => s.slotOf(roleOf(i)));
      const opened = await s.media.openLeg(callId, legRole, slots, negotiated ?? [null]);
      openedLeg = opened.legId;
      const local: SdpLocal = {
        address: config.rtp.advertisedAddress,
        ports: opened.ports,
        sessionId: sdpSession++,
        sessionVersion: 1,
      };
      const sdp = negotiated ? renderAnswer(req.body, negotiated, local) : renderOffer(local, config.rtp.codecs);
      const leg = await answerInvite(srf, req, res, sdp, (dlg) => {
        const l = new Leg(legDialog(dlg), callId, legRole, opened.legId, count, s.media);
        s.addLeg(l);
        watchDialog(dlg, l, s, local, clog, offerless ? cseqOf(req) : null);
        openedLeg = null;
        return l;
      }, config.sip.answerTimeoutSec * 1000);
      clog.info({ conf: key, role: leg.role, offerless, ports: local.ports, codecs: negotiated?.map((n) => n.codec), srtp: negotiated?.map((n) => n.srtp?.suite ?? null), mediaWorker: session.media.worker }, 'leg answered');
      deps.observe?.invite(200);
    } catch (err) {
      refuseInvite(deps, { session, openedLeg, res, log: clog, what: 'INVITE' }, err);
    } finally {
      endAttempt?.();
    }
  });

  /** When a request reached drachtio-server (recordings start and stop at that instant; see arrival-time.ts). */
  const arrivedAtOf = (req: SrfReq | undefined): number => arrivalWallMs(req?.stackTime, Date.now(), config.rtp.horizonMs);

  /** Refuses a body over sip.maxBodyBytes with 413 before anything parses it. */
  const tooLarge = (req: SrfReq): void => checkBodySize(req, config.sip.maxBodyBytes);

  /**
   * `offerCseq`: the CSeq of the (re-)INVITE whose 200 carried our offer, so its ACK carries the answer. An ACK is
   * matched to the INVITE it acknowledges by CSeq: the ACK of the initial INVITE, emitted late (drachtio-srf emits
   * `ack` on setImmediate), is not taken as the answer to an offer-less re-INVITE that came right behind it.
   */
  function watchDialog(dlg: Srf.Dialog, leg: Leg, session: CallSession, local: SdpLocal, clog: Logger, firstOfferCseq: number | null): void {
    let offerCseq = firstOfferCseq;

    // the host notes hold / unhold in the recording's history
    const apply = (negotiated: NegotiatedMedia[]): void => session.media.updateLeg(leg.legId, negotiated);

    dlg.on('ack', (ack: SrfReq) => {
      if (offerCseq === null || cseqOf(ack) !== offerCseq) return;
      offerCseq = null;
      if (isOfferless(ack.body)) {
        clog.warn('offer-less INVITE answered but the ACK carried no SDP: no media on this leg');
        return;
      }
      try {
        apply(negotiate(ack.body, config.rtp.codecs));
      } catch (err) {
        clog.warn({ err: (err as Error).message }, 'SDP answer in ACK unusable; ending the leg');
        // BYE first: the leg must not look ended before its BYE is sent
        void leg.close({ bye: true }).then(() => session.legEnded(leg, 'bad answer in ACK'));
      }
    });

    dlg.on('modify', (req: SrfReq, res: SrfRes) => {
      local.sessionVersion++;
      try {
        tooLarge(req);
        if (isOfferless(req.body)) {
          offerCseq = cseqOf(req);
          res.send(200, { body: renderOffer(local, config.rtp.codecs), headers: { 'Content-Type': 'application/sdp' } });
          return;
        }
        const negotiated = negotiate(req.body, config.rtp.codecs).slice(0, leg.streamCount);
        const answer = renderAnswer(req.body, negotiated, { ...local, ports: local.ports.slice(0, negotiated.length) });
        apply(negotiated);
        res.send(200, { body: answer, headers: { 'Content-Type': 'application/sdp' } });
      } catch (err) {
        const status = err instanceof RecorderError ? err.sipStatus : 500;
        clog.warn({ status, err: (err as Error).message }, 're-INVITE refused');
        res.send(status, { headers: warning((err as Error).message) });
      }
    });

    dlg.on('info', async (req: SrfReq, res: SrfRes) => {
      const arrivedAt = arrivedAtOf(req);
      const type = contentType(req);
      try {
        tooLarge(req);
      } catch (err) {
        clog.warn({ err: (err as Error).message }, 'INFO refused');
        res.send(413, { headers: warning((err as Error).message) });
        return;
      }
      if (!req.body || req.body.trim() === '') {
        res.send(200);
        return;
      }
      if (!MSML_CONTENT_TYPES.has(type)) {
        clog.warn({ type }, 'INFO with a body that is not MSML: 415');
        res.send(415, { headers: { Accept: [...MSML_CONTENT_TYPES].join(', ') } });
        return;
      }
      const answer = await session.handleMsml(req.body, leg.dialog, arrivedAt);
      deps.observe?.msml(answer.verb ?? 'unknown', answer.code);
      res.send(200, { body: answer.body, headers: { 'Content-Type': type } });
      await answer.after?.();
    });

    dlg.on('destroy', (bye: SrfReq | undefined, reason?: string) => {
      void session.legEnded(leg, reason ?? 'BYE', arrivedAtOf(bye)).then(() => leg.close({ bye: false }));
    });
  }
}
