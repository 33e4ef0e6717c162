/**
 * The latency benchmark's floor: 10 raw sockets, each sending `GET /` every 10 ms (about 1,000
 * requests/s), spotting the end of a response by its body alone, with no HTTP parsing, timing
 * the rest of the way as Cicada does: from the write to the response. Prints the latencies (ms)
 * as one JSON array.
 *
 *   node dist/bench/bare-client.js PORT SECONDS
 */
import { connect } from "node:net";

const port = Number(process.argv[2]);
const seconds = Number(process.argv[3] ?? 10);
const lat: number[] = [];
const end = Date.now() + seconds * 1000;
const req = Buffer.from("GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
await Promise.all(
  Array.from(
    { length: 10 },
    () =>
      new Promise<void>((done) => {
        const s = connect(port, "127.0.0.1");
        s.setNoDelay(true);
        let t0 = 0;
        const go = () => {
          if (Date.now() > end) {
            s.end();
            done();
            return;
          }
          t0 = performance.now();
          s.write(req);
        };
        s.on("connect", go);
        s.on("data", (d: Buffer) => {
          if (d.indexOf("\r\n\r\nok") < 0) return;
          const now = performance.now();
          lat.push(now - t0);
          setTimeout(go, Math.max(0, 10 - (now - t0)));
        });
      }),
  ),
);
process.stdout.write(`${JSON.stringify(lat)}\n`);
