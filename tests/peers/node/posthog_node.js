// posthog-node as its users call it: an event with a session, then an error log
// (posthog-node sends logs as OTLP JSON to /i/v1/logs?token=...). The capture mode comes from
// POSTHOG_CAPTURE_MODE (v0: /batch/, v1: /i/v1/analytics/events).
//
// Usage: POSTHOG_API_KEY=... node posthog_node.js <host>
'use strict';
const { PostHog } = require('posthog-node');

async function main() {
  const host = process.argv[2];
  const errors = [];
  const client = new PostHog(process.env.POSTHOG_API_KEY, {
    host,
    flushAt: 1,
    flushInterval: 0,
    fetchRetryCount: 0,
    logs: { serviceName: 'node-billing' },
  });
  client.on('error', (error) => errors.push(String(error && error.message)));
  client.capture({
    distinctId: 'node-user-2',
    event: 'invoice paid',
    properties: { $session_id: 'node-session-2', amount: 42 },
  });
  if (typeof client.captureLog === 'function') {
    client.captureLog({
      body: 'card declined',
      level: 'error',
      attributes: { posthogDistinctId: 'node-user-2', code: 'E001' },
    });
  }
  await client.shutdown(10000);
  process.stdout.write(JSON.stringify({ errors, logs: typeof client.captureLog }) + '\n');
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack) + '\n');
  process.exit(1);
});
