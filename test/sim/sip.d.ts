// Minimal typings for the `sip` npm package (kirm/sip.js), used only by the test equipment.
declare module 'sip' {
  export interface SipUri {
    schema?: string;
    user?: string;
    host: string;
    port?: number;
    params: Record<string, string | null>;
  }
  export interface SipMessage {
    method?: string;
    uri?: string | SipUri;
    status?: number;
    reason?: string;
    version: string;
    headers: Record<string, any>;
    content?: string;
  }
  export interface Remote {
    protocol: string;
    address: string;
    port: number;
    local?: { address: string; port: number };
  }
  export interface Stack {
    send(m: SipMessage, callback?: (rs: SipMessage, remote?: Remote) => void): void;
    destroy(): void;
  }
  export function create(
    options: { port?: number; address?: string; publicAddress?: string; hostname?: string; udp?: boolean; tcp?: boolean; logger?: object },
    callback: (rq: SipMessage, remote: Remote) => void,
  ): Stack;
  export function parse(s: string): SipMessage | undefined;
  export function stringify(m: SipMessage): string;
  export function parseUri(s: string | SipUri): SipUri;
  export function stringifyUri(u: string | SipUri): string;
  export function makeResponse(rq: SipMessage, status: number, reason?: string, ext?: { headers?: object; content?: string }): SipMessage;
  export function generateBranch(): string;
}
