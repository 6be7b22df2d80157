/**
 * Load generator for the API ingest row, run as its own process (as CI pipelines are), so the
 * client's work does not share the API's event loop. Reads the payload files named on stdin
 * (NUL-separated) first, then POSTs them with `CONNECTIONS` keep-alive connections and prints
 * {"seconds": …} of the posting alone.
 *   env: URL (API base), TOKEN, ARTIFACT, CONNECTIONS
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

const paths = readFileSync(0, 'utf8').split('\0').filter(Boolean);
const bodies = paths.map((p) => readFileSync(p));
const url = new URL(process.env.URL);
const connections = Number(process.env.CONNECTIONS ?? 8);
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const post = (body) =>
  new Promise((res, rej) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: `/evidence?kind=other&artifact=${process.env.ARTIFACT}`,
        headers: { authorization: `Bearer ${process.env.TOKEN}`, 'content-type': 'application/octet-stream', 'content-length': body.length },
      },
      (r) => {
        r.resume();
        r.on('end', () => (r.statusCode === 201 || r.statusCode === 200 ? res() : rej(new Error(`POST /evidence: HTTP ${r.statusCode}`))));
      },
    );
    req.on('error', rej);
    req.end(body);
  });
let next = 0;
const t = performance.now();
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (next < bodies.length) await post(bodies[next++]);
  }),
);
process.stdout.write(`${JSON.stringify({ seconds: (performance.now() - t) / 1000 })}\n`);
agent.destroy();
