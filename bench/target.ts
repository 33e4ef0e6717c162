import { createServer } from "node:http";

// A minimal keep-alive target in its own process, so it does not share a core's event loop
// with the generator being measured.
const body = Buffer.from('{"status":"ok","service":"bench-target"}');
const server = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const addr = server.address();
  if (addr && typeof addr === "object") process.stdout.write(`${addr.port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
