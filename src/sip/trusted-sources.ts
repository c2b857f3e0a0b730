import { BlockList, isIP } from 'node:net';

/**
 * The hosts that may start work on the recorder: Resource Manager / SIP Server for MSML, the SBCs for SIPREC, the
 * proxies in front of the RM shim. Matched on the address drachtio-server reports as the request's source (the
 * packet's, not any header), as CIDRs or single addresses, IPv4 and IPv6 (an IPv4-mapped IPv6 source is matched as
 * IPv4). Empty: everyone (the recorder warns at start). Uses node's `net.BlockList` for the matching.
 */
export class TrustedSources {
  private readonly list = new BlockList();
  readonly open: boolean;

  /** Throws an Error naming the first entry that is not an address or CIDR. */
  constructor(readonly entries: readonly string[]) {
    this.open = entries.length === 0;
    for (const e of entries) {
      const [addr, bits, extra] = e.trim().split('/');
      const family = isIP(addr);
      const max = family === 4 ? 32 : 128;
      const prefix = bits === undefined ? max : Number(bits);
      if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
        throw new Error(`"${e}" is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)`);
      }
      this.list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** Whether a request from `address` may be taken. */
  allows(address: string | undefined): boolean {
    if (this.open) return true;
    if (!address) return false;
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    const a = v4 ?? address;
    const family = isIP(a);
    if (family === 0) return false;
    return this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}
