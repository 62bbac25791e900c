// A Node.js receiver for hmac (Standard Webhooks) deliveries, with the standardwebhooks library.
//
//   npm ci && WEBHOOK_SECRET=whsec_... PORT=9000 node receiver.mjs
//
// The same three rules as examples/receiver.py: verify the raw body before parsing it, deduplicate by
// webhook-id, answer 2xx at once and do the work afterwards.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error("set WEBHOOK_SECRET to the endpoint's whsec_… secret");
  process.exit(2);
}
const webhook = new Webhook(secret);
const seen = new Set(); // a real receiver keeps processed webhook-ids in its database, with a TTL

function handleEvent(event, webhookId) {
  // The real work: runs after the answer has gone.
  console.log(`${event.webhook_type} id=${webhookId} (hmac verified)`);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8"); // the raw body: never re-serialised JSON
    let event;
    try {
      // Checks the signature over id, timestamp and body, and the 5-minute timestamp tolerance.
      event = webhook.verify(body, req.headers);
    } catch (err) {
      res.writeHead(401, { "content-type": "text/plain" }).end(`signature check failed: ${err.message}`);
      return;
    }
    const webhookId = req.headers["webhook-id"];
    const duplicate = seen.has(webhookId);
    seen.add(webhookId);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ received: true, duplicate }));
    if (!duplicate) setImmediate(() => handleEvent(event, webhookId));
  });
});

server.listen(Number(process.env.PORT || 9000), process.env.HOST || "127.0.0.1", () => {
  console.log(`listening on ${server.address().address}:${server.address().port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
