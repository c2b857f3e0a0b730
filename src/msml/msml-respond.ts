
function esc(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** The body of the 200 OK to an MSML INFO: `<result response="…">` with optional description and ids. */
export function resultBody(code: number, opts: { description?: string; dialogId?: string; confId?: string } = {}): string {
  const inner: string[] = [];
  if (opts.description !== undefined) inner.push(`    <description>${esc(opts.description)}</description>`);
  if (opts.confId !== undefined) inner.push(`    <confid>${esc(opts.confId)}</confid>`);
  if (opts.dialogId !== undefined) inner.push(`    <dialogid>${esc(opts.dialogId)}</dialogid>`);
  const result =
    inner.length === 0
      ? `  <result response="${code}"/>`
      : `  <result response="${code}">\n${inner.join('\n')}\n  </result>`;
  return `${HEAD}<msml version="1.1">\n${result}\n</msml>\n`;
}

/** An asynchronous MSML event (`moml.exit`, `msml.dialog.exit`) with name/value pairs, for an INFO to SIP Server. */
export function eventBody(name: string, id: string, values: [string, string][] = []): string {
  if (values.length === 0) return `${HEAD}<msml version="1.1">\n  <event name="${esc(name)}" id="${esc(id)}"/>\n</msml>\n`;
  const pairs = values.map(([n, v]) => `    <name>${esc(n)}</name>\n    <value>${esc(v)}</value>`).join('\n');
  return `${HEAD}<msml version="1.1">\n  <event name="${esc(name)}" id="${esc(id)}">\n${pairs}\n  </event>\n</msml>\n`;
}
