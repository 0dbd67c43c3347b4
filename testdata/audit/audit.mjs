// Runs graphql-http's server audits (the GraphQL over HTTP spec) against
// the Aisle server at the URL given, prints one line per audit and a
// summary as JSON on the last line, and exits 1 if any audit is an error.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs http://HOST:PORT/graphql');
  process.exit(2);
}
const results = await auditServer({ url });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status]++;
  if (r.status !== 'ok') {
    const why = await r.response.text().catch(() => '');
    console.log(`${r.status}\t${r.id}\t${r.name}\t${r.reason}\t${why.slice(0, 200)}`);
  }
}
console.log(JSON.stringify(counts));
process.exit(counts.error > 0 ? 1 : 0);
