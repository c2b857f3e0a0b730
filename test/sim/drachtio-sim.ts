/**
 * A drachtio-server stand-in for tests (test equipment, not product code). It speaks drachtio's wire protocol
 * (`<len>#<msgId>|<verb>|…`, see shared/reference/drachtio-notes.md §2 and drachtio-wire-transcript.txt) to the real
 * drachtio-srf on a TCP control port, and real SIP on a UDP+TCP socket through the `sip` package, so SIPp can
 * drive the app end to end. Behaviour copied from the real daemon:
 *  - the app's responses are completed before sending: Via from the request, To-tag (one per dialog),
 *    `Contact: <sip:host:port>` on 2xx to INVITE, `Content-Type: application/sdp` on INVITE 2xx with a body;
 *  - dialogId = `<Call-ID>;from-tag=<UAC From tag>`, in the echo of the INVITE 2xx and on in-dialog requests;
 *  - the ACK of the initial INVITE carries the INVITE's txnId, a re-INVITE's ACK a fresh one;
 *  - in-dialog requests from the app (`sip||<dialogId>` with `sip:placeholder`) are built from dialog state;
 *  - CANCEL: 200 to the CANCEL, 487 to the INVITE, CANCEL forwarded to the app.
 *  - proxy (`Srf#proxyRequest`): the INVITE goes to the first destination (its Request-URI) with the server's own
 *    Via, and with `remainInDialog` a `Record-Route: <sip:host:port;lr>`; every response goes back upstream and to
 *    the app (`response|<msgId>|OK|network|…|continue`), then `response|<msgId>|OK|done`. Later requests whose top
 *    Route is this server are forwarded by the server itself (loose routing), without the app, as drachtio does.
 *  - a UAS dialog keeps the INVITE's Record-Route as its route set (RFC 3261 12.1.1): the 2xx echoes it and the
 *    app's in-dialog requests carry it as Route.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import * as sip from 'sip';

const CRLF = '\r\n';

interface Txn {
  rq: sip.SipMessage;
  remote: sip.Remote;
  dialogId: string;
  app: Socket;
}

interface SimDialog {
  id: string;
  callId: string;
  localTag: string;
  remoteTag: string;
  localUri: string;
  remoteUri: string;
  remoteTarget: string;
  localCseq: number;
  protocol: string;
  remote: sip.Remote;
  app: Socket;
  /** txnId of the initial INVITE, until its ACK arrived */
  inviteTxn: string | null;
  /** Route set from the INVITE's Record-Route (UAS side: in order). */
  routeSet: { uri: string; params: Record<string, unknown> }[];
}

export interface SimOptions {
  secret: string;
  host?: string;
  sipPort?: number;
  controlPort?: number;
  /** log every frame to stderr (debugging) */
  trace?: boolean;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function stamp(): string {
  const d = new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`;
}

function tag(): string {
  return randomUUID().replace(/-/g, '').slice(0, 13);
}

/** Parses raw SIP text (headers and body) into the `sip` package's message object. */
export function parseSip(text: string): sip.SipMessage {
  const full = text.includes(CRLF + CRLF) ? text : text + CRLF + CRLF;
  const m = sip.parse(full);
  if (!m) throw new Error(`unparseable SIP: ${text.split(CRLF)[0]}`);
  if (m.content === undefined) m.content = '';
  return m;
}

export class DrachtioSim {
  controlPort = 0;
  sipPort = 0;
  readonly host: string;
  /** Frames seen, for assertions: [direction, verb]. */
  readonly frames: { dir: 'in' | 'out'; text: string }[] = [];
  /**
   * Fault injection: an app's 2xx to an INVITE for which this says true is swallowed — neither sent nor echoed nor
   * refused — as when the transaction is gone under drachtio-server (its TCP connection closed, a raw duplicate).
   */
  swallowAnswer: (callId: string) => boolean = () => false;
  /** Requests this server forwarded by their Route header (proxied dialogs), for assertions: method and Call-ID. */
  readonly routed: { method: string; callId: string }[] = [];
  private server: Server | null = null;
  private stack: sip.Stack | null = null;
  private apps = new Map<Socket, { authed: boolean; routes: Set<string>; buf: Buffer }>();
  private txns = new Map<string, Txn>();
  private dialogs = new Map<string, SimDialog>();
  private pendingInvites = new Map<string, string>(); // call-id -> txnId

  constructor(private readonly opts: SimOptions) {
    this.host = opts.host ?? '127.0.0.1';
  }

  get hostport(): string {
    return `tcp/${this.host}:${this.sipPort},udp/${this.host}:${this.sipPort}`;
  }

  async start(): Promise<this> {
    this.sipPort = this.opts.sipPort ?? (await freeDualPort(this.host));
    // publicAddress must differ from the peers' host: the `sip` package takes a URI with its own host for a flow token
    this.stack = sip.create({ address: this.host, port: this.sipPort, publicAddress: 'localhost', udp: true, tcp: true }, (rq, remote) =>
      this.fromNetwork(rq, remote),
    );
    this.server = createServer((sock) => this.onApp(sock));
    await new Promise<void>((resolve) => this.server?.listen(this.opts.controlPort ?? 0, this.host, resolve));
    const addr = this.server.address();
    this.controlPort = typeof addr === 'object' && addr ? addr.port : 0;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.apps.keys()) s.destroy();
    this.stack?.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Number of apps connected and authenticated. */
  get connectedApps(): number {
    return [...this.apps.values()].filter((a) => a.authed).length;
  }

  // ---- control connection -------------------------------------------------------------------

  private onApp(sock: Socket): void {
    this.apps.set(sock, { authed: false, routes: new Set(), buf: Buffer.alloc(0) });
    sock.setNoDelay(true);
    sock.on('data', (d) => this.onData(sock, d));
    sock.on('close', () => this.apps.delete(sock));
    sock.on('error', () => undefined);
  }

  private onData(sock: Socket, data: Buffer): void {
    const st = this.apps.get(sock);
    if (!st) return;
    st.buf = Buffer.concat([st.buf, data]);
    for (;;) {
      const hash = st.buf.indexOf('#');
      if (hash < 0) return;
      const len = Number(st.buf.subarray(0, hash).toString());
      if (!Number.isInteger(len)) {
        sock.destroy();
        return;
      }
      if (st.buf.length < hash + 1 + len) return;
      const frame = st.buf.subarray(hash + 1, hash + 1 + len).toString('utf8');
      st.buf = st.buf.subarray(hash + 1 + len);
      this.onFrame(sock, frame);
    }
  }

  /**
   * While > 0, frames to the app are held and written together every `batchMs`: what a busy app (or a busy
   * drachtio-server) gets, several frames in one read — e.g. the 200's echo, the ACK and a BYE right behind it.
   */
  batchMs = 0;
  private held = new Map<Socket, string[]>();

  private send(sock: Socket, payload: string): void {
    const msg = `${randomUUID()}|${payload}`;
    if (this.opts.trace) process.stderr.write(`<<< ${msg}\n`);
    this.frames.push({ dir: 'out', text: msg });
    this.write(sock, `${Buffer.byteLength(msg)}#${msg}`);
  }

  private write(sock: Socket, bytes: string): void {
    if (this.batchMs <= 0) {
      sock.write(bytes);
      return;
    }
    const q = this.held.get(sock);
    if (q) {
      q.push(bytes);
      return;
    }
    this.held.set(sock, [bytes]);
    setTimeout(() => {
      const all = this.held.get(sock) ?? [];
      this.held.delete(sock);
      sock.write(all.join(''));
    }, this.batchMs);
  }

  /** Writes raw bytes to every connected app (test equipment for broken frames). */
  writeRaw(bytes: string): void {
    for (const [s, st] of this.apps) if (st.authed) this.write(s, bytes);
  }

  /**
   * Hands the app a request from `remote` exactly as given (raw text, as drachtio-server passes it through), with
   * the transaction kept so the app's answer goes back to `remote`. The simulator's own bookkeeping uses a parse of
   * the text with CRLF line ends.
   */
  injectRequest(raw: string, remote: sip.Remote, dialogId = ''): string {
    const rq = parseSip(raw.replace(/\r?\n/g, CRLF));
    const app = dialogId ? this.dialogs.get(dialogId)?.app : this.appFor(rq.method as string);
    if (!app) throw new Error('no app for this request');
    const txnId = randomUUID();
    this.txns.set(txnId, { rq, remote, dialogId, app });
    this.send(app, `sip|network|${Buffer.byteLength(raw)}|${remote.protocol.toLowerCase()}|${remote.address}|${remote.port}|${stamp()}|${txnId}|${dialogId}|${this.host}|${this.sipPort}|${CRLF}${raw}`);
    return txnId;
  }

  /** The app's answer to a transaction (from the frames it sent), or null while there is none. */
  answerTo(txnId: string): string | null {
    const f = this.frames.find((x) => x.dir === 'in' && x.text.split('|')[1] === 'sip' && x.text.split('|')[2] === txnId);
    return f ? f.text.slice(f.text.indexOf(CRLF) + 2) : null;
  }

  /** A restart of drachtio-server: every connection and dialog is gone; it comes back on the same ports. */
  async restart(downMs = 0): Promise<void> {
    const { sipPort, controlPort } = this;
    await this.stop();
    this.dialogs.clear();
    this.txns.clear();
    this.pendingInvites.clear();
    await new Promise((r) => setTimeout(r, downMs));
    Object.assign(this.opts, { sipPort, controlPort });
    await this.start();
  }

  private onFrame(sock: Socket, frame: string): void {
    if (this.opts.trace) process.stderr.write(`>>> ${frame}\n`);
    this.frames.push({ dir: 'in', text: frame });
    const st = this.apps.get(sock);
    if (!st) return;
    const nl = frame.indexOf(CRLF);
    const leader = nl < 0 ? frame : frame.slice(0, nl);
    const raw = nl < 0 ? '' : frame.slice(nl + 2);
    const t = leader.split('|');
    const [msgId, verb] = t;
    if (verb === 'authenticate') {
      if (t[2] === this.opts.secret) {
        st.authed = true;
        this.send(sock, `response|${msgId}|OK|${this.hostport}|v0.9.10-sim|${this.hostport}`);
      } else {
        this.send(sock, `response|${msgId}|NOK|incorrect secret`);
      }
      return;
    }
    if (!st.authed) {
      sock.destroy();
      return;
    }
    switch (verb) {
      case 'route':
        st.routes.add(t[2].toLowerCase());
        this.send(sock, `response|${msgId}|OK`);
        return;
      case 'remove_route':
        st.routes.delete(t[2].toLowerCase());
        this.send(sock, `response|${msgId}|OK`);
        return;
      case 'ping':
        this.send(sock, `response|${msgId}|OK`);
        return;
      case 'sip':
        this.fromApp(sock, msgId, t[2] ?? '', t[3] ?? '', raw);
        return;
      case 'proxy':
        this.proxyFromApp(sock, msgId, t);
        return;
      default:
        this.send(sock, `response|${msgId}|NOK|unsupported verb ${verb}`);
    }
  }

  // ---- SIP from the network -----------------------------------------------------------------

  private frameFor(m: sip.SipMessage, remote: sip.Remote, txnId: string, dialogId: string, withProto = true): string {
    const text = sip.stringify(m);
    const proto = withProto ? remote.protocol.toLowerCase() : '';
    return `sip|network|${Buffer.byteLength(text)}|${proto}|${remote.address}|${remote.port}|${stamp()}|${txnId}|${dialogId}|${this.host}|${this.sipPort}|${CRLF}${text}`;
  }

  private appFor(method: string): Socket | null {
    for (const [s, st] of this.apps) if (st.authed && st.routes.has(method.toLowerCase())) return s;
    return null;
  }

  private isSelf(uri: string): boolean {
    const u = sip.parseUri(uri);
    return u.host === this.host && Number(u.port ?? 5060) === this.sipPort;
  }

  /** A request routed through us (our Record-Route came back as its top Route): forward it, app not involved. */
  private forwardByRoute(rq: sip.SipMessage): void {
    this.routed.push({ method: rq.method as string, callId: rq.headers['call-id'] as string });
    const fwd = clone(rq);
    const rest = (fwd.headers.route as unknown[]).slice(1);
    if (rest.length) fwd.headers.route = rest;
    else delete fwd.headers.route;
    fwd.headers['max-forwards'] = Number(fwd.headers['max-forwards'] ?? 70) - 1;
    if (fwd.method === 'ACK') {
      fwd.headers.via.unshift({ version: '2.0', protocol: 'UDP', host: this.host, port: this.sipPort, params: { branch: sip.generateBranch() } });
      this.stack?.send(fwd);
      return;
    }
    this.stack?.send(fwd, (rs) => {
      const up = clone(rs);
      up.headers.via.shift();
      this.stack?.send(up);
    });
  }

  /**
   * `proxy|<txnId>|remainInDialog|fullResponse|followRedirects|serial|<provTimeout>|<finalTimeout>|<dest>…`:
   * serial forking as drachtio does it: a destination that answers with a final status of 300..599, or sends no
   * response within the provisional timeout, is given up and the next is tried; the last one's answer goes upstream.
   */
  private proxyFromApp(sock: Socket, msgId: string, t: string[]): void {
    const txnId = t[2];
    const remainInDialog = t[3] === 'remainInDialog';
    const provisionalMs = parseDuration(t[7]) ?? 32_000;
    const dests = t.slice(9).filter((d) => d !== '');
    const txn = this.txns.get(txnId);
    if (!txn || dests.length === 0) {
      this.send(sock, `response|${msgId}|NOK|${txn ? 'no destination' : `unknown transaction ${txnId}`}`);
      return;
    }
    this.txns.delete(txnId);
    this.pendingInvites.delete(txn.rq.headers['call-id'] as string);
    const report = (rs: sip.SipMessage, r: sip.Remote): void => {
      const text = sip.stringify(rs);
      this.send(sock, `response|${msgId}|OK|network|${Buffer.byteLength(text)}|${r.protocol.toLowerCase()}|${r.address}|${r.port}|${stamp()}|${txnId}||continue${CRLF}${text}`);
    };
    const attempt = (i: number): void => {
      const last = i === dests.length - 1;
      const fwd = clone(txn.rq);
      fwd.uri = dests[i];
      fwd.headers['max-forwards'] = Number(fwd.headers['max-forwards'] ?? 70) - 1;
      if (remainInDialog) fwd.headers['record-route'] = [{ uri: `sip:${this.host}:${this.sipPort};lr`, params: {} }, ...(fwd.headers['record-route'] ?? [])];
      // the response's source is the destination (the `sip` package does not report it for client transactions)
      const u = sip.parseUri(dests[i]);
      const destRemote: sip.Remote = { protocol: txn.remote.protocol, address: u.host, port: Number(u.port ?? 5060) };
      let answered = false;
      let done = false;
      const timer = last
        ? null
        : setTimeout(() => {
            if (answered || done) return;
            done = true;
            attempt(i + 1);
          }, provisionalMs);
      this.stack?.send(fwd, (rs, remote) => {
        if (done) return;
        answered = true;
        const status = rs.status as number;
        const r = remote ?? destRemote;
        if (status >= 300 && status < 600 && !last) {
          // this destination failed: the next one is tried, upstream sees nothing of it but the report to the app
          done = true;
          if (timer) clearTimeout(timer);
          report(rs, r);
          attempt(i + 1);
          return;
        }
        const up = clone(rs);
        up.headers.via.shift();
        this.stack?.send(up);
        report(up, r);
        if (status >= 200) {
          done = true;
          if (timer) clearTimeout(timer);
          this.send(sock, `response|${msgId}|OK|done`);
        }
      });
    };
    attempt(0);
  }

  private fromNetwork(rq: sip.SipMessage, remote: sip.Remote): void {
    const method = rq.method as string;
    const route = rq.headers.route as { uri: string }[] | undefined;
    if (route?.length && this.isSelf(route[0].uri)) {
      this.forwardByRoute(rq);
      return;
    }
    const callId = rq.headers['call-id'] as string;
    const fromTag = rq.headers.from?.params?.tag as string | undefined;
    const toTag = rq.headers.to?.params?.tag as string | undefined;
    const dialogId = `${callId};from-tag=${fromTag}`;
    const dlg = toTag ? this.dialogs.get(dialogId) : undefined;

    if (method === 'ACK') {
      if (!dlg) return; // ACK to a non-2xx is absorbed by the transaction layer; stray ACKs are dropped
      const txnId = dlg.inviteTxn ?? randomUUID();
      dlg.inviteTxn = null;
      this.send(dlg.app, this.frameFor(rq, remote, txnId, dlg.id, false));
      return;
    }
    if (method === 'CANCEL') {
      this.stack?.send(sip.makeResponse(rq, 200, 'OK'));
      const txnId = this.pendingInvites.get(callId);
      const txn = txnId ? this.txns.get(txnId) : undefined;
      if (txn && txnId) {
        this.pendingInvites.delete(callId);
        const rs = sip.makeResponse(txn.rq, 487, 'Request Terminated');
        rs.headers.to = { ...rs.headers.to, params: { ...rs.headers.to.params, tag: tag() } };
        this.stack?.send(rs);
        this.txns.delete(txnId);
        this.send(txn.app, this.frameFor(rq, remote, randomUUID(), ''));
      }
      return;
    }
    if (toTag && !dlg) {
      this.stack?.send(sip.makeResponse(rq, 481, 'Call/Transaction Does Not Exist'));
      return;
    }
    const app = dlg ? dlg.app : this.appFor(method);
    if (!app) {
      this.stack?.send(sip.makeResponse(rq, 503, 'Service Unavailable'));
      return;
    }
    const txnId = randomUUID();
    this.txns.set(txnId, { rq, remote, dialogId: dlg ? dlg.id : '', app });
    if (method === 'INVITE' && !dlg) this.pendingInvites.set(callId, txnId);
    this.send(app, this.frameFor(rq, remote, txnId, dlg ? dlg.id : ''));
  }

  // ---- SIP from the app ---------------------------------------------------------------------

  private echo(sock: Socket, msgId: string, m: sip.SipMessage, remote: sip.Remote, txnId: string, dialogId: string, withProto: boolean): void {
    const text = sip.stringify(m);
    const proto = withProto ? remote.protocol.toLowerCase() : '';
    this.send(sock, `response|${msgId}|OK|application|${Buffer.byteLength(text)}|${proto}|${remote.address}|${remote.port}|${stamp()}|${txnId}|${dialogId}||Msg sent:|${CRLF}${text}`);
  }

  private contact(): { uri: string; params: Record<string, string> }[] {
    return [{ uri: `sip:${this.host}:${this.sipPort}`, params: {} }];
  }

  private fromApp(sock: Socket, msgId: string, txnId: string, dialogId: string, raw: string): void {
    let m: sip.SipMessage;
    try {
      m = parseSip(raw);
    } catch (err) {
      this.send(sock, `response|${msgId}|NOK|${(err as Error).message}`);
      return;
    }
    if (m.status !== undefined) this.responseFromApp(sock, msgId, txnId, m);
    else this.requestFromApp(sock, msgId, dialogId, m);
  }

  private responseFromApp(sock: Socket, msgId: string, txnId: string, m: sip.SipMessage): void {
    const txn = this.txns.get(txnId);
    if (!txn) {
      this.send(sock, `response|${msgId}|NOK|unknown transaction ${txnId}`);
      return;
    }
    const rq = txn.rq;
    const status = m.status as number;
    const method = rq.method as string;
    const callId = rq.headers['call-id'] as string;
    if (method === 'INVITE' && status >= 200 && status < 300 && this.swallowAnswer(callId)) return;
    const fromTag = rq.headers.from.params.tag as string;
    const dialogKey = `${callId};from-tag=${fromTag}`;
    let dlg = this.dialogs.get(dialogKey);
    const localTag = (rq.headers.to.params?.tag as string | undefined) ?? dlg?.localTag ?? tag();
    m.headers.via = rq.headers.via;
    m.headers['call-id'] = callId;
    m.headers.cseq = rq.headers.cseq;
    m.headers.from = rq.headers.from;
    m.headers.to = { ...rq.headers.to, params: { ...(rq.headers.to.params ?? {}), tag: localTag } };
    m.headers['content-length'] = undefined;
    if (method === 'INVITE' && status < 300 && rq.headers['record-route']) m.headers['record-route'] = rq.headers['record-route'];
    if (method === 'INVITE' && status >= 200 && status < 300) {
      m.headers.contact = this.contact();
      if (m.content && !m.headers['content-type']) m.headers['content-type'] = 'application/sdp';
    }
    if (m.content === '') delete m.content;
    let echoDialog = txn.dialogId;
    if (method === 'INVITE' && status >= 200 && status < 300 && !dlg) {
      dlg = {
        id: dialogKey,
        callId,
        localTag,
        remoteTag: fromTag,
        localUri: rq.headers.to.uri,
        remoteUri: rq.headers.from.uri,
        remoteTarget: rq.headers.contact?.[0]?.uri ?? rq.headers.from.uri,
        localCseq: 100 + Math.floor(Math.random() * 1000),
        protocol: txn.remote.protocol,
        remote: txn.remote,
        app: sock,
        inviteTxn: txnId,
        routeSet: clone(rq.headers['record-route'] ?? []),
      };
      this.dialogs.set(dialogKey, dlg);
      echoDialog = dialogKey;
    } else if (method === 'INVITE' && dlg && status >= 200 && status < 300) {
      echoDialog = dlg.id;
    }
    if (method === 'BYE') {
      echoDialog = '';
      this.dialogs.delete(dialogKey);
    }
    if (status >= 200) {
      this.txns.delete(txnId);
      if (method === 'INVITE') this.pendingInvites.delete(callId);
    }
    this.stack?.send(m);
    this.echo(sock, msgId, m, txn.remote, txnId, echoDialog, method === 'INVITE');
  }

  private requestFromApp(sock: Socket, msgId: string, dialogId: string, m: sip.SipMessage): void {
    const dlg = this.dialogs.get(dialogId);
    if (!dlg) {
      this.send(sock, `response|${msgId}|NOK|unable to find dialog for ${dialogId || 'an out-of-dialog request (not simulated)'}`);
      return;
    }
    const method = m.method as string;
    const extra = { ...m.headers };
    for (const h of ['via', 'from', 'to', 'call-id', 'cseq', 'contact', 'max-forwards', 'content-length']) delete extra[h];
    const rq: sip.SipMessage = {
      method,
      uri: dlg.remoteTarget,
      version: '2.0',
      headers: {
        via: [],
        'max-forwards': 70,
        from: { uri: dlg.localUri, params: { tag: dlg.localTag } },
        to: { uri: dlg.remoteUri, params: { tag: dlg.remoteTag } },
        'call-id': dlg.callId,
        cseq: { seq: method === 'ACK' ? dlg.localCseq : ++dlg.localCseq, method },
        contact: this.contact(),
        ...(dlg.routeSet.length ? { route: clone(dlg.routeSet) } : {}),
        ...extra,
      },
      content: m.content || undefined,
    };
    const txnId = randomUUID();
    if (method === 'BYE') this.dialogs.delete(dialogId);
    // like the real server: the echo of what was sent comes before any response to it
    this.echo(sock, msgId, rq, dlg.remote, txnId, dialogId, true);
    this.stack?.send(rq, (rs, remote) => {
      this.send(sock, this.frameFor(rs, remote ?? dlg.remote, txnId, dialogId));
    });
  }
}

/** drachtio's timeout syntax: `2s`, `1500ms`; null for none. */
function parseDuration(v: string | undefined): number | null {
  const m = /^(\d+)(ms|s)$/.exec(v ?? '');
  if (!m) return null;
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

/** A port free for both UDP and TCP on `host`. */
export async function freeDualPort(host = '127.0.0.1'): Promise<number> {
  const { createSocket } = await import('node:dgram');
  for (let i = 0; i < 50; i++) {
    const srv = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, host, () => resolve((srv.address() as { port: number }).port));
    });
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, host, () => resolve(true));
    });
    udp.close();
    await new Promise<void>((r) => srv.close(() => r()));
    if (ok) return port;
  }
  throw new Error('no free UDP+TCP port');
}
