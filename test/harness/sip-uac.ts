/** A small SIP user agent client over real UDP (the `sip` package), for tests that send odd or broken requests. */
import { randomUUID } from 'node:crypto';
import * as sip from 'sip';
import { freeDualPort } from '../sim/drachtio-sim.js';

export interface UacDialog {
  callId: string;
  fromTag: string;
  toTag: string;
  cseq: number;
  target: string;
}

export class SipUac {
  private stack!: sip.Stack;
  port = 0;
  /** Requests the far end sent us (MSML event INFOs, BYE), in order. */
  readonly received: sip.SipMessage[] = [];
  constructor(private readonly server: string) {}

  async start(): Promise<this> {
    this.port = await freeDualPort();
    this.stack = sip.create({ address: '127.0.0.1', publicAddress: 'localhost', port: this.port, udp: true, tcp: false }, (rq) => {
      // answer whatever the far end sends us (MSML events, BYE)
      this.received.push(rq);
      if (rq.method !== 'ACK') this.stack.send(sip.makeResponse(rq, 200, 'OK'));
    });
    return this;
  }

  stop(): void {
    this.stack.destroy();
  }

  /** Sends a request and resolves with its final response. */
  /**
   * `ackBody`: the SDP the ACK of a 2xx to INVITE carries (3PCC: the answer to the offer in the 200).
   * `afterAck`: called right after that ACK went out (to send the next request right behind it).
   */
  request(
    method: string,
    uri: string,
    opts: { headers?: Record<string, unknown>; body?: string; dialog?: UacDialog; ackBody?: string; afterAck?: (rs: sip.SipMessage) => void } = {},
  ): Promise<sip.SipMessage> {
    const d = opts.dialog;
    const rq: sip.SipMessage = {
      method,
      uri: d ? d.target : uri,
      version: '2.0',
      headers: {
        to: { uri: `sip:${this.server}`, params: d ? { tag: d.toTag } : {} },
        from: { uri: `sip:test@127.0.0.1:${this.port}`, params: { tag: d ? d.fromTag : randomUUID().slice(0, 8) } },
        'call-id': d ? d.callId : randomUUID(),
        cseq: { method, seq: d ? ++d.cseq : 1 },
        contact: [{ uri: `sip:test@127.0.0.1:${this.port}` }],
        'max-forwards': 70,
        ...(opts.headers ?? {}),
      },
      content: opts.body ?? '',
    };
    return new Promise((resolve) => {
      this.stack.send(rq, (rs) => {
        if ((rs.status as number) < 200) return;
        if (method === 'INVITE' && (rs.status as number) < 300) {
          this.stack.send({
            method: 'ACK',
            uri: rs.headers.contact?.[0]?.uri ?? rq.uri,
            version: '2.0',
            headers: {
              to: rs.headers.to,
              from: rs.headers.from,
              'call-id': rs.headers['call-id'],
              cseq: { method: 'ACK', seq: rq.headers.cseq.seq },
              via: [],
              'max-forwards': 70,
              ...(opts.ackBody ? { 'content-type': 'application/sdp' } : {}),
            },
            content: opts.ackBody ?? '',
          });
          opts.afterAck?.(rs);
        }
        resolve(rs);
      });
    });
  }

  /** The dialog a 2xx to INVITE established. */
  dialogOf(rs: sip.SipMessage): UacDialog {
    return {
      callId: rs.headers['call-id'],
      fromTag: rs.headers.from.params.tag,
      toTag: rs.headers.to.params.tag,
      cseq: rs.headers.cseq.seq,
      target: rs.headers.contact?.[0]?.uri,
    };
  }
}

/** A response's status and, when it has one, its Warning (why a request was refused): for an error message. */
export const statusText = (rs: sip.SipMessage): string => `${rs.status}${rs.headers.warning ? ` (${String(rs.headers.warning)})` : ''}`;

export const PCMU_OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
