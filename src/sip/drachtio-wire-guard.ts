import { createRequire } from 'node:module';
import type Srf from 'drachtio-srf';

/**
 * Hardening of drachtio-srf's client side of the drachtio wire protocol (`<len>#<msgId>|…` frames over TCP), for
 * what drachtio-srf 5.0.29 does not survive:
 *  - its frame parser *throws* out of the socket's 'data' handler when a length prefix is not a number (seen with
 *    very large messages) or when handling a frame throws: an uncaught exception that ends the process. Guarded,
 *    the bad frame is skipped up to the next frame header (`<digits>#<uuid>|`) and parsing goes on on the same
 *    connection, so drachtio-server keeps its dialogs (a dropped connection loses them all);
 *  - its SIP parser finds no headers in a message with bare-LF line ends (drachtio-server passes the text through
 *    raw), so such a request was never answered. Header lines are given CRLF ends before drachtio-srf parses them.
 * Installed once per process, before the first connect (drachtio-srf binds its handlers at connect).
 */

interface WireProtocolLike {
  mapIncomingMsg: Map<unknown, { incomingMsg: Buffer; length: number }>;
  closing?: boolean;
  reconnectVars?: { retryTimer: NodeJS.Timeout | null };
  _onData(socket: unknown, msg: Buffer): void;
}
interface AgentLike {
  _onMsg(socket: unknown, msg: string): void;
}

const FRAME_HEAD = /\d{1,10}#[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\|/i;
const EMPTY = Buffer.alloc(0);

type FaultListener = (err: Error, skippedBytes: number) => void;
const listeners = new Set<FaultListener>();
let installed = false;

/** Where in `buf` (after its first byte) the next frame starts; the whole length when none does. */
export function nextFrameStart(buf: Buffer): number {
  const m = FRAME_HEAD.exec(buf.toString('latin1', 1));
  return m ? m.index + 1 : buf.length;
}

/**
 * Gives a SIP message's header lines CRLF ends (RFC 3261 §7 wants CRLF; some senders use LF). The body is left as
 * it is. A message that already uses CRLF comes back unchanged (the same string).
 */
export function crlfHeaders(sip: string): string {
  const crlfEnd = sip.indexOf('\r\n\r\n');
  const lfEnd = sip.indexOf('\n\n');
  if (lfEnd < 0 || (crlfEnd >= 0 && crlfEnd < lfEnd)) return sip;
  const head = sip.slice(0, lfEnd).replace(/\r?\n/g, '\r\n');
  return `${head}\r\n\r\n${sip.slice(lfEnd + 2)}`;
}

/** The frame with the SIP message after its leader line given CRLF header lines (`sip|…` frames only). */
export function normalizeFrame(frame: string): string {
  const nl = frame.indexOf('\r\n');
  if (nl < 0) return frame;
  const leader = frame.slice(0, nl);
  if (leader.split('|', 2)[1] !== 'sip') return frame;
  const sip = frame.slice(nl + 2);
  const fixed = crlfHeaders(sip);
  return fixed === sip ? frame : `${leader}\r\n${fixed}`;
}

/** A fault listener that logs each skipped frame (and counts it with `count`): the recorder's and the shim's. */
export function logWireFaults(log: { error(o: object, m: string): void }, count: () => void = () => undefined): FaultListener {
  return (err, skipped) => {
    count();
    log.error({ err: err.message.slice(0, 300), skippedBytes: skipped }, 'drachtio-srf could not handle a frame from drachtio-server; skipped it');
  };
}

/** Installs the guard (once per process) and adds a listener told of every frame skipped. Returns a remover. */
export function guardDrachtioWire(onFault: FaultListener): () => void {
  listeners.add(onFault);
  if (!installed) {
    installed = true;
    const require = createRequire(import.meta.url);
    const wp = (require('drachtio-srf/lib/wire-protocol.js') as { prototype: WireProtocolLike }).prototype;
    const agent = (require('drachtio-srf/lib/drachtio-agent.js') as { prototype: AgentLike }).prototype;
    const onData = wp._onData;
    wp._onData = function guardedOnData(this: WireProtocolLike, socket: unknown, msg: Buffer): void {
      let chunk = msg;
      for (;;) {
        try {
          onData.call(this, socket, chunk);
          return;
        } catch (err) {
          const st = this.mapIncomingMsg.get(socket);
          const buf = st?.incomingMsg ?? EMPTY;
          const skip = nextFrameStart(buf);
          if (st) st.incomingMsg = buf.subarray(skip);
          for (const l of listeners) l(err instanceof Error ? err : new Error(String(err)), skip);
          if (!st || st.incomingMsg.length === 0) return;
          chunk = EMPTY;
        }
      }
    };
    const onMsg = agent._onMsg;
    agent._onMsg = function normalizedOnMsg(this: AgentLike, socket: unknown, msg: string): void {
      onMsg.call(this, socket, normalizeFrame(msg));
    };
  }
  return () => listeners.delete(onFault);
}

/**
 * Ends the connection to drachtio-server and its reconnect loop, whether it is connected or not (drachtio-srf's
 * own `disconnect()` asserts on a socket that is not there: drachtio-server down). Never throws.
 */
export function disconnectDrachtio(srf: Srf): void {
  const wp = (srf as unknown as { app?: { client?: { wp?: WireProtocolLike } } }).app?.client?.wp;
  if (wp) {
    wp.closing = true;
    if (wp.reconnectVars?.retryTimer) clearTimeout(wp.reconnectVars.retryTimer);
  }
  try {
    srf.disconnect();
  } catch {
    // not connected: nothing to close
  }
}
