import type { RtpPacket } from './rtp-packet.js';

export interface RtpEndpointStats {
  datagrams: number;
  malformed: number;
  lastMalformed: string | null;
}

/** What became of a packet before the stream saw it (the native engine relays on its own thread). */
export const RELAY_JS = 0;
/** Relayed by the engine as received (the payload type rewritten if the legs differ). */
export const RELAY_DONE = 1;
/** Relayed by the engine with the payload converted (μ-law ↔ A-law). */
export const RELAY_TRANSCODED = 2;
/** The engine's route did not relay it (no far end yet, a payload type not relayed, a party that does not send). */
export const RELAY_NOT = 3;
export type RelayOutcome = typeof RELAY_JS | typeof RELAY_DONE | typeof RELAY_TRANSCODED | typeof RELAY_NOT;

/**
 * How the native engine relays what arrives on an endpoint, without the JavaScript thread: sent from `peer`'s socket
 * to `peer`'s far end, `inAudio` as `outAudio` (through `table` when the codecs differ) and `inEvent` as `outEvent`
 * (-1: none). `native` false: the JavaScript thread relays (`wake`: it is woken for each packet).
 */
export interface EngineRoute {
  peer: RtpEndpoint | null;
  native: boolean;
  wake: boolean;
  inAudio: number;
  inEvent: number;
  outAudio: number;
  outEvent: number;
  table: Uint8Array | null;
}

/**
 * One UDP socket on an even port (taken from the RTP port pool by the main thread): what arrives goes to `onPacket`
 * parsed, with its arrival time (performance.now() ms) and source (symmetric RTP). Two kinds: `DgramEndpoint`
 * (Node's dgram, the relay done by the stream) and the native engine's (`udp-engine.ts`: relayed on a thread of its
 * own, by `route`). `close()` is idempotent; the port goes back to the pool when the main thread hears the leg closed.
 */
export interface RtpEndpoint {
  readonly port: number;
  readonly stats: RtpEndpointStats;
  /**
   * `datagram` is the packet as received (`p.payload` is a view into it); `p`, `from` and `datagram` are valid during
   * the call only. `relayed` says whether the engine relayed it already.
   */
  onPacket: (p: RtpPacket, arrivalMs: number, from: { address: string; port: number }, datagram: Buffer, relayed: RelayOutcome) => void;
  /** Best-effort send from this socket. */
  send(data: Uint8Array, address: string, port: number): void;
  /** Whether `route` relays natively (false: every packet comes with RELAY_JS). */
  readonly routes: boolean;
  /** Sets how the engine relays this socket's packets (a no-op where `routes` is false). */
  route(r: EngineRoute): void;
  /** The far end as the SDP says, until packets come from elsewhere (null: none). */
  setRemote(address: string | null, port: number): void;
  close(): void;
}
