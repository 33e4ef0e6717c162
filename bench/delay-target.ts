import { createServer } from "node:http";

// Answers after a fixed delay and keeps its own record of how long each request took, from
// the request's arrival to the end of the response: the truth the generator is compared with.
// `GET /__durations` hands over the durations recorded since the last such call and starts a
// new record, so one target serves every phase of the latency benchmark.
const delayMs = Number(process.argv[2] ?? 10);
let durations: number[] = [];
const server = createServer((req, res) => {
  if (req.url === "/__durations") {
    res.end(JSON.stringify(durations));
    durations = [];
    return;
  }
  const t0 = performance.now();
  setTimeout(() => {
    res.end("ok");
    durations.push(performance.now() - t0);
  }, delayMs);
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  if (addr && typeof addr === "object") process.stdout.write(`${addr.port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
