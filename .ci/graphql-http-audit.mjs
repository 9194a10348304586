// Runs the graphql-http audit suite (GraphQL over HTTP) against a running
// server: prints every result and fails when a MUST or SHOULD audit does not
// pass. MAY audits are reported only. .ci/run installs graphql-http beside
// this file and runs it there:
//
//   node graphql-http-audit.mjs http://127.0.0.1:8080/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node graphql-http-audit.mjs URL');
  process.exit(2);
}

const results = await auditServer({ url });
const counts = { MUST: { ok: 0, not: 0 }, SHOULD: { ok: 0, not: 0 }, MAY: { ok: 0, not: 0 } };
let failed = 0;
for (const r of results) {
  // A failed MUST is an 'error', a failed SHOULD a 'warn', a failed MAY a
  // 'notice'; the level is also the first word of the name.
  const level = r.name.split(' ')[0];
  if (r.status === 'ok') {
    counts[level].ok++;
    console.log(`ok      ${r.id} ${r.name}`);
    continue;
  }
  counts[level].not++;
  if (level !== 'MAY' || r.status === 'error') failed++;
  const body = await r.response.text().catch(() => '');
  console.log(`${r.status.padEnd(7)} ${r.id} ${r.name}: ${r.reason} (HTTP ${r.response.status}: ${body.slice(0, 300)})`);
}
for (const [level, c] of Object.entries(counts)) {
  console.log(`${level} audits: ${c.ok} ok, ${c.not} not ok`);
}
const passed = results.filter((r) => r.status === 'ok').length;
console.log(`audit: ${passed} passed, ${failed} failed`);
if (failed > 0) {
  console.error(`${failed} MUST or SHOULD audits did not pass`);
  process.exit(1);
}
