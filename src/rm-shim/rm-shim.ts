import Srf from 'drachtio-srf';
import { Redis } from 'ioredis';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { redacted, type Config } from '../config.js';
import { RecorderError } from '../errors.js';
import type { Logger } from 'pino';
import { closeSteps } from '../ops/lifecycle.js';
import { createLogger } from '../ops/logger.js';
import { OpsServer } from '../ops/ops-server.js';
import { readiness } from '../ops/readiness.js';
import { RecorderDirectory, type RecorderEntry } from '../ops/recorder-registry.js';
import { isMsmlUri, parseRecordingUri } from '../sip/request-uri.js';
import { inviteHeaders, isSiprecInvite } from '../siprec/siprec-request.js';
import { disconnectDrachtio, guardDrachtioWire, logWireFaults } from '../sip/drachtio-wire-guard.js';
import { warning } from '../sip/sip-request.js';
import { TrustedSources } from '../sip/trusted-sources.js';
import { SourceLabels } from '../ops/source-labels.js';
import { answeredBy, freeRoom, pickRecorder, retarget, routeInvite } from './routing.js';

export interface Shim {
  srf: Srf;
  log: Logger;
  opsPort: Promise<number>;
  /** Stops taking INVITEs (503), waits drain.callGraceSec for dialogs routed through this shim, then closes. */
  drain(reason: string): Promise<void>;
  /** Closes now. */
  stop(reason: string): Promise<void>;
}


/**
 * The resource-manager shim: SIP Server sends it the recording INVITEs it would send to Genesys RM; it picks a
 * recorder pod from the registry the recorders keep in Redis and proxies the INVITE there with drachtio-srf,
 * record-routing so the dialog's later requests (ACK, INFO, BYE) follow the same path. Every dialog of a conf-id
 * goes to the same recorder.
 */
export function startShim(config: Config): Shim {
  const log = createLogger(config.log.level).child({ mode: 'rm-shim' });
  log.info({ config: redacted(config) }, 'starting');
  const redis = new Redis(config.cluster.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  let redisDownSince: number | null = Date.now();
  redis.on('ready', () => (redisDownSince = null));
  redis.on('close', () => (redisDownSince ??= Date.now()));
  const directory = new RecorderDirectory(redis);
  let draining = false;
  let drachtioConnected = false;
  let lastList: RecorderEntry[] = [];

  // calls sent to a recorder since its last heartbeat (its activeCalls does not count them yet)
  const sent = new Map<string, { beatAt: number; n: number }>();
  const sentSinceBeat = (e: RecorderEntry): number => {
    const s = sent.get(e.id);
    return s && s.beatAt === e.at ? s.n : 0;
  };
  const noteSent = (e: RecorderEntry, delta = 1): void => {
    const s = sent.get(e.id);
    sent.set(e.id, { beatAt: e.at, n: Math.max(0, (s && s.beatAt === e.at ? s.n : 0) + delta) });
  };
  // recorders that failed an INVITE (5xx, no answer: crashed a moment ago) get nothing new until they beat again
  const suspect = new Map<string, number>();
  const usable = (list: RecorderEntry[]): RecorderEntry[] => list.filter((e) => suspect.get(e.id) !== e.at);

  const registry = new Registry();
  const trusted = new TrustedSources(config.rmShim.allowedSources);
  if (trusted.open) log.warn('rmShim.allowedSources is empty: any host that reaches drachtio-server may send the shim INVITEs');
  const sourceLabels = new SourceLabels();
  const refusedSources = new Counter({ name: 'msmlrec_shim_refused_sources_total', help: 'INVITEs refused with 403: their source is not in rmShim.allowedSources, by source address (the first 100; then "other")', labelNames: ['source'], registers: [registry] });
  collectDefaultMetrics({ register: registry, prefix: 'msmlrec_shim_' });
  const failovers = new Counter({ name: 'msmlrec_shim_failovers_total', help: 'Recorders that failed an INVITE (5xx or no answer), which then went to the next one', registers: [registry] });
  const invites = new Counter({ name: 'msmlrec_shim_invites_total', help: 'INVITEs by outcome (proxied final status, or refused)', labelNames: ['result'], registers: [registry] });
  new Gauge({
    name: 'msmlrec_shim_recorders',
    help: 'Recorders in the registry at the last lookup, by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ state: 'taking' }, lastList.filter((e) => !e.draining && freeRoom(e, 0) > 0).length);
      this.set({ state: 'full' }, lastList.filter((e) => !e.draining && freeRoom(e, 0) <= 0).length);
      this.set({ state: 'draining' }, lastList.filter((e) => e.draining).length);
    },
  });

  const unguard = guardDrachtioWire(logWireFaults(log));
  const srf = new Srf();
  srf.use('options', (_req: Srf.SrfRequest, res: Srf.SrfResponse) => {
    void directory
      .list()
      .then((list) => {
        lastList = list;
        res.send(!draining && pickRecorder(list, null, () => 0) ? 200 : 503);
      })
      .catch(() => res.send(503));
  });

  srf.invite(async (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
    const callId = req.get('Call-ID');
    const clog = log.child({ callId });
    const refuse = (status: number, text: string): void => {
      clog.warn({ status, err: text }, 'INVITE refused');
      invites.inc({ result: String(status) });
      res.send(status, { headers: warning(text, 'msml-recorder-rm') });
    };
    if (!trusted.allows(req.source_address)) {
      refusedSources.inc({ source: sourceLabels.of(req.source_address) });
      return refuse(403, `source ${req.source_address} is not in rmShim.allowedSources`);
    }
    if (draining) return refuse(503, 'draining');
    let key: string;
    let hasConf: boolean;
    try {
      if (isSiprecInvite(inviteHeaders(req), req.body, isMsmlUri(req.uri))) {
        // a SIPREC recording session is one dialog: a new session for the recorder with the most room
        key = callId;
        hasConf = false;
      } else {
        const uri = parseRecordingUri(req.uri);
        key = uri.confId ?? callId;
        hasConf = uri.confId !== null;
      }
    } catch (err) {
      return refuse(err instanceof RecorderError ? err.sipStatus : 400, (err as Error).message);
    }
    let candidates: RecorderEntry[];
    let reason: 'pinned' | 'capacity';
    try {
      const list = await directory.list();
      lastList = list;
      const pinnedId = hasConf ? await directory.pinned(key) : null;
      // a further leg goes where its conf-id is; a new conf-id to the best recorder, then the next ones if it fails
      const route = routeInvite(usable(list), pinnedId, sentSinceBeat, config.rmShim.failoverTargets);
      if (!route) return refuse(503, list.length ? 'no recorder has capacity' : 'no recorder registered');
      reason = route.reason;
      candidates = route.candidates;
      if (reason === 'capacity' && hasConf) {
        // another shim replica may have placed this conf-id a moment ago: follow it
        const winner = await directory.pin(key, candidates[0].id, config.rmShim.confTtlSec, pinnedId !== null);
        const w = list.find((e) => e.id === winner);
        if (w && w.id !== candidates[0].id) candidates = [w];
      }
    } catch (err) {
      return refuse(503, `recorder registry unavailable: ${(err as Error).message}`);
    }
    // only a new conf-id takes room; a further leg of a call the recorder has does not
    if (reason === 'capacity') for (const c of candidates) noteSent(c);
    const dests = candidates.map((c) => retarget(req.uri, c.sipUri));
    clog.info({ conf: key, recorders: candidates.map((c) => c.id), reason, dests }, 'proxying INVITE');
    try {
      const result = (await srf.proxyRequest(req, dests, {
        recordRoute: true,
        forking: 'sequential',
        provisionalTimeout: `${config.rmShim.provisionalTimeoutMs}ms`,
      })) as unknown as { finalStatus?: number; finalResponse?: { msg: { get(h: string): string | undefined } } };
      const status = result.finalStatus;
      invites.inc({ result: String(status ?? 'none') });
      // who took the call: the recorder its 200's Contact names (drachtio-srf's per-source grouping of responses
      // is not reliable). Serial forking stops at the first success, so every recorder tried before it failed
      // (5xx or no answer in time: crashed a moment ago) and gets no new call until its next heartbeat
      const contact = status !== undefined && status < 300 ? /<?(sips?:[^>;]+)/.exec(result.finalResponse?.msg.get('Contact') ?? '')?.[1] : undefined;
      const hp = contact ? /^sips?:(?:[^@]*@)?([^:;]+)(?::(\d+))?/.exec(contact) : null;
      const took = hp ? candidates.find((c) => answeredBy(c.sipUri, hp[1], Number(hp[2] ?? 5060))) : undefined;
      const tried = took ? candidates.slice(0, candidates.indexOf(took)) : status === undefined || status >= 500 ? candidates : [];
      for (const c of tried) {
        suspect.set(c.id, c.at);
        failovers.inc();
        clog.warn({ conf: key, recorder: c.id }, 'recorder failed the INVITE; skipped until its next heartbeat');
      }
      if (reason === 'capacity') for (const c of candidates) if (c !== took) noteSent(c, -1);
      if (took && hasConf && reason === 'capacity' && took.id !== candidates[0].id) await directory.pin(key, took.id, config.rmShim.confTtlSec, true).catch(() => undefined);
      clog.info({ conf: key, recorder: took?.id ?? null, status }, 'INVITE proxied');
    } catch (err) {
      invites.inc({ result: 'error' });
      for (const c of candidates) if (reason === 'capacity') noteSent(c, -1);
      clog.warn({ conf: key, err: (err as Error).message }, 'proxy failed');
    }
  });

  srf.on('connect', (err: Error, hostport: string) => {
    if (err) return log.error({ err }, 'drachtio connect failed');
    drachtioConnected = true;
    log.info({ hostport }, 'connected to drachtio-server');
  });
  (srf as unknown as NodeJS.EventEmitter).on('close', () => (drachtioConnected = false));
  srf.on('error', (err: Error) => log.warn({ err: err.message }, 'drachtio connection error; reconnecting'));
  srf.connect({ host: config.drachtio.host, port: config.drachtio.port, secret: config.drachtio.secret });

  const ready = () =>
    readiness({
      draining,
      drachtioConnected,
      redisDownMs: redisDownSince === null ? 0 : Date.now() - redisDownSince,
      redisGraceMs: 0,
      freeRtpPorts: 1,
    });
  const ops = new OpsServer(
    {
      metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
      readiness: ready,
      status: async () => ({ mode: 'rm-shim', ready: ready().ready, reasons: ready().reasons, draining, recorders: lastList }),
      drain: () => {
        if (!draining) log.info('draining (POST /drain): refusing new INVITEs');
        draining = true;
      },
    },
    log.child({ part: 'ops' }),
    config.ops.adminToken,
  );
  const opsPort = ops.listen(config.ops.port, config.ops.bindAddress);
  opsPort.catch((err: Error) => log.error({ err: err.message }, 'ops server could not listen'));

  let stopping: Promise<void> | null = null;
  let drainP: Promise<void> | null = null;
  let forceStop: () => void = () => undefined;
  const forced = new Promise<void>((r) => (forceStop = r));
  const shim: Shim = {
    srf,
    log,
    opsPort,
    drain(reason) {
      // in-dialog requests of proxied calls pass through this pod's drachtio-server, not this process; the pod
      // stays up for the grace so that live calls keep their path
      drainP ??= (async () => {
        draining = true;
        log.info({ reason, graceSec: config.drain.callGraceSec }, 'draining: refusing new INVITEs');
        await Promise.race([new Promise((r) => setTimeout(r, config.drain.callGraceSec * 1000).unref()), forced]);
        await shim.stop(reason);
      })();
      return drainP;
    },
    stop(reason) {
      forceStop();
      stopping ??= (async () => {
        draining = true;
        log.info({ reason }, 'stopping');
        await closeSteps(
          [
            { name: 'drachtio connection', timeoutMs: 1000, run: () => disconnectDrachtio(srf) },
            { name: 'redis', timeoutMs: 1000, run: () => redis.disconnect() },
            { name: 'ops server', timeoutMs: 3000, run: () => ops.close() },
          ],
          log,
        );
        unguard();
        log.info('stopped');
      })();
      return stopping;
    },
  };
  return shim;
}
