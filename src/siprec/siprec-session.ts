import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import { RecorderError, SignalingError } from '../errors.js';
import { heldByAddress, type NegotiatedMedia } from '../media/negotiated-media.js';
import type { SiprecInfo } from '../recording/metadata.js';
import { CallSession } from '../session/call-session.js';
import { Leg } from '../session/leg.js';
import { metadataUpdate, siprecChannels } from './siprec-channels.js';
import { inviteHeaders, readSiprecBody, readSiprecInvite } from './siprec-request.js';
import { isMsmlUri, requestUriUser, siprecRecordingUri } from '../sip/request-uri.js';
import { arrivalWallMs } from '../sip/arrival-time.js';
import { isOfferless, negotiate, renderAnswer, renderOffer, type SdpLocal } from '../sip/sdp-answer.js';
import { answerInvite, checkBodySize, cseqOf, legDialog, refuseInvite, warning } from '../sip/sip-request.js';
import type { InviteFeatureContext, SipAppDeps } from '../sip/sip-app-deps.js';

type SrfReq = Srf.SrfRequest;
type SrfRes = Srf.SrfResponse;

/**
 * The most audio streams a SIPREC session records. Each is recorded: the caller's streams on one channel, every other
 * participant's mixed on the other (a conference fork). An offer with more is refused (488 with a Warning), never
 * answered with streams we do not record.
 */
export const MAX_SIPREC_STREAMS = 8;

/** What answering a SIPREC INVITE needs from the SIP app. */
export type SiprecContext = InviteFeatureContext;

/** A SIPREC answer never sends media: recvonly, or inactive where the SRC said inactive. */
function asRecorder(n: NegotiatedMedia): NegotiatedMedia {
  return { ...n, localDirection: n.remoteDirection === 'inactive' ? 'inactive' : 'recvonly' };
}

/** No stream sends (inactive, recvonly, c=0.0.0.0): the recording pauses (RFC 7866 §7.1.1.2 pause by re-INVITE). */
const noneSends = (media: (NegotiatedMedia | null)[]): boolean =>
  media.every((m) => m === null || heldByAddress(m) || m.remoteDirection === 'inactive' || m.remoteDirection === 'recvonly');

/**
 * The IVR profile name a SIPREC session asks for by `siprec.profileRule`: null for `default`, the Request-URI's user
 * part for `uri-user`, a header's value for `header:<Name>`.
 */
function profileNameOf(rule: string, req: SrfReq): string | null {
  if (rule === 'uri-user') return requestUriUser(req.uri);
  if (rule.startsWith('header:')) return req.get(rule.slice('header:'.length))?.trim() || null;
  return null;
}

/**
 * Answers a SIPREC INVITE (RFC 7866) as a recording session: its body read over the raw text (multipart SDP +
 * metadata, or a plain SDP), each audio m-line answered recvonly (inactive as offered) with its own port, the
 * recording started as the 200 goes out and stopped at the BYE. Re-INVITEs and UPDATEs may move streams (new
 * address, codec, SSRC: the same file goes on), pause it (every stream inactive) and update the metadata (kept in the
 * sidecar's history). Every failure becomes a SIP answer with a Warning. False (nothing answered): the INVITE is
 * not a SIPREC one (`readSiprecInvite`).
 */
export async function answerSiprecInvite(srf: Srf, ctx: SiprecContext, req: SrfReq, res: SrfRes, arrivedAt: number): Promise<boolean> {
  const { deps } = ctx;
  const { config, log } = deps;
  const callId = req.get('Call-ID');
  const key = `siprec:${callId}`;
  const clog = log.child({ callId, siprec: true });
  let session: CallSession | null = null;
  let openedLeg: number | null = null;
  let endAttempt: (() => void) | null = null;
  try {
    const body = readSiprecInvite(inviteHeaders(req), req.body, isMsmlUri(req.uri));
    if (body === null) return false;
    if (body.sdp === null) throw new SignalingError('SIPREC INVITE without an SDP offer (offer-less recording sessions are not supported)', { sipStatus: 488 });
    if (deps.registry.get(key)) throw new SignalingError(`a SIPREC session with Call-ID ${callId} is already recording`, { sipStatus: 482 });
    const all = negotiate(body.sdp, config.rtp.codecs);
    if (all.length > MAX_SIPREC_STREAMS) throw new SignalingError(`SIPREC offer with ${all.length} audio streams: at most ${MAX_SIPREC_STREAMS} are recorded`, { sipStatus: 488 });
    const negotiated = all.map(asRecorder);
    ctx.admitNew();
    const profileName = profileNameOf(config.siprec.profileRule, req);
    const profile = deps.profiles ? deps.profiles.resolve(profileName ?? 'default') : null;
    if (deps.profiles && !profile) throw new SignalingError(`unknown IVR profile ${profileName ?? '(none)'} for a SIPREC session (siprec.profileRule ${config.siprec.profileRule}, profiles.requireKnown)`, { sipStatus: 404 });
    const { slots, info } = siprecChannels(body.metadata, body.metadataXml, negotiated.map((n) => ({ mline: n.mline, label: n.label })), config.siprec.leftChannel, callId);
    const bindings = { conf: key, siprecSession: info.sessionId, profile: profile?.name };
    const s = new CallSession(key, siprecRecordingUri(req.uri, profile?.name ?? null), null, deps.session, log.child(bindings), profile, deps.plane.session(key, bindings));
    session = s;
    deps.registry.add(s);
    endAttempt = s.beginAttempt();
    const opened = await s.media.openLeg(callId, 'other', slots, negotiated);
    openedLeg = opened.legId;
    const local: SdpLocal = { address: config.rtp.advertisedAddress, ports: opened.ports, sessionId: ctx.nextSdpSession(), sessionVersion: 1 };
    const sdp = renderAnswer(body.sdp, negotiated, local);
    await answerInvite(srf, req, res, sdp, (dlg) => {
      const leg = new Leg(legDialog(dlg), callId, 'other', opened.legId, negotiated.length, s.media);
      s.addLeg(leg);
      openedLeg = null;
      // the media worker went away while the leg was opened: the session is over before it began
      if (s.closed) return void leg.close({ bye: true });
      const watch = new SiprecDialog(dlg, leg, s, local, info, negotiated, ctx, clog);
      s.startSiprec(leg.dialog, info, arrivedAt);
      if (noneSends(negotiated)) watch.pauseForInactive();
    }, config.sip.answerTimeoutSec * 1000);
    clog.info({ conf: key, siprecSession: info.sessionId, ports: local.ports, codecs: negotiated.map((n) => n.codec), slots, channelsBy: info.channelsBy, participants: info.participants.map((p) => p.aor), mediaWorker: s.media.worker }, 'SIPREC session answered');
    deps.observe?.invite(200);
  } catch (err) {
    refuseInvite(deps, { session, openedLeg, res, log: clog, what: 'SIPREC INVITE' }, err);
  } finally {
    endAttempt?.();
  }
  return true;
}

/**
 * The dialog of a SIPREC recording session after its INVITE: re-INVITE and UPDATE (new SDP and/or metadata; a
 * re-INVITE without SDP gets our offer and its ACK the answer), BYE.
 */
class SiprecDialog {
  /** The CSeq of the re-INVITE whose 200 carried our offer (its ACK carries the answer), or null. */
  private offerCseq: number | null = null;
  /** Paused because no stream sends (not by anything else: nothing else pauses a SIPREC session). */
  private pausedByInactive = false;
  /** What each recorded stream (by index) last negotiated. */
  private readonly current: NegotiatedMedia[];

  constructor(
    dlg: Srf.Dialog,
    private readonly leg: Leg,
    private readonly session: CallSession,
    private readonly local: SdpLocal,
    private readonly info: SiprecInfo,
    negotiated: NegotiatedMedia[],
    private readonly ctx: SiprecContext,
    private readonly log: Logger,
  ) {
    this.current = [...negotiated];
    dlg.on('modify', (req: SrfReq, res: SrfRes) => this.renegotiate(req, res, true));
    dlg.on('update', (req: SrfReq, res: SrfRes) => this.renegotiate(req, res, false));
    dlg.on('ack', (ack: SrfReq) => this.ack(ack));
    dlg.on('destroy', (bye: SrfReq | undefined, reason?: string) => {
      void session.legEnded(leg, reason ?? 'BYE', arrivalWallMs(bye?.stackTime, Date.now(), ctx.deps.config.rtp.horizonMs)).then(() => leg.close({ bye: false }));
    });
  }

  pauseForInactive(): void {
    this.pausedByInactive = true;
    this.session.pause();
    this.log.info('no SIPREC stream sends: recording paused');
  }

  /** Pauses when no stream sends any more, resumes when one sends again. */
  private followDirections(): void {
    const idle = noneSends(this.current);
    if (idle && !this.pausedByInactive) this.pauseForInactive();
    else if (!idle && this.pausedByInactive) {
      this.pausedByInactive = false;
      this.session.resume();
      this.log.info('a SIPREC stream sends again: recording resumed');
    }
  }

  /** The recorded stream an offered m-line continues: the one with its label, else the one at its index. */
  private streamOf(n: NegotiatedMedia, taken: Set<number>): number {
    const byLabel = n.label === null ? -1 : this.info.streams.findIndex((s, i) => !taken.has(i) && s.label === n.label);
    if (byLabel >= 0) return byLabel;
    return this.info.streams.findIndex((s, i) => !taken.has(i) && s.mline === n.mline && (s.label === null || n.label === null));
  }

  private renegotiate(req: SrfReq, res: SrfRes, invite: boolean): void {
    this.local.sessionVersion++;
    const sdpHeaders = { 'Content-Type': 'application/sdp' };
    try {
      checkBodySize(req, this.ctx.deps.config.sip.maxBodyBytes);
      const body = readSiprecBody(req.get('Content-Type') ?? '', req.body);
      if (body.metadata && body.metadataXml !== null) {
        this.session.media.event('siprec.metadata', metadataUpdate(body.metadata, body.metadataXml, this.info.streams));
        this.log.info({ participants: body.metadata.participants.map((p) => p.aor) }, 'SIPREC metadata update');
      }
      if (body.sdp === null || isOfferless(body.sdp)) {
        // a re-INVITE without an offer gets ours (its ACK answers it); an UPDATE without SDP changes no media
        if (!invite) return void res.send(200);
        this.offerCseq = cseqOf(req);
        const labels = this.info.streams.map((s) => s.label);
        res.send(200, { body: renderOffer(this.local, this.ctx.deps.config.rtp.codecs, { direction: 'recvonly', labels }), headers: sdpHeaders });
        return;
      }
      const offered = negotiate(body.sdp, this.ctx.deps.config.rtp.codecs).map(asRecorder);
      const taken = new Set<number>();
      const chosen: NegotiatedMedia[] = [];
      const ports: number[] = [];
      const media: (NegotiatedMedia | null)[] = this.info.streams.map(() => null);
      for (const n of offered) {
        const i = this.streamOf(n, taken);
        if (i < 0) continue;
        taken.add(i);
        chosen.push(n);
        ports.push(this.local.ports[i]);
        media[i] = n;
      }
      if (chosen.length === 0) throw new SignalingError('the new offer has none of the recorded streams (by label or m-line)', { sipStatus: 488 });
      const answer = renderAnswer(body.sdp, chosen, { ...this.local, ports });
      this.apply(media);
      res.send(200, { body: answer, headers: sdpHeaders });
    } catch (err) {
      const status = err instanceof RecorderError ? err.sipStatus : 500;
      this.log.warn({ status, err: (err as Error).message }, `SIPREC ${invite ? 're-INVITE' : 'UPDATE'} refused`);
      res.send(status, { headers: warning((err as Error).message) });
    }
  }

  /** New negotiations for some streams (null: unchanged): the media follows, the pause follows the directions. */
  private apply(media: (NegotiatedMedia | null)[]): void {
    media.forEach((m, i) => {
      if (m) this.current[i] = m;
    });
    this.session.media.updateLeg(this.leg.legId, media);
    this.followDirections();
  }

  /** The ACK of a re-INVITE we answered with an offer carries the SRC's answer, m-line for m-line. */
  private ack(ack: SrfReq): void {
    if (this.offerCseq === null || cseqOf(ack) !== this.offerCseq) return;
    this.offerCseq = null;
    try {
      const body = readSiprecBody(ack.get('Content-Type') ?? '', ack.body);
      if (body.sdp === null) return void this.log.warn('offer-less SIPREC re-INVITE answered but the ACK carried no SDP: media unchanged');
      const answered = negotiate(body.sdp, this.ctx.deps.config.rtp.codecs);
      this.apply(this.info.streams.map((_, i) => answered.find((n) => n.mline === i) ?? null));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'SDP answer in the ACK unusable; media unchanged');
    }
  }
}
