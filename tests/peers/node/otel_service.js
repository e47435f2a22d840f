// A Node.js HTTP service as people write one with the OpenTelemetry SDK: each request gets a
// SERVER span that continues the caller's W3C trace context and baggage, the
// BaggageSpanProcessor (@opentelemetry/baggage-span-processor) copies the `posthog.*` baggage
// members to span attributes, and the OTLP/HTTP exporter (protobuf) sends to the URL it is given.
//
// Usage: node otel_service.js <port> <OTLP traces URL, e.g. http://127.0.0.1:4318/v1/traces>
//   GET /checkout   200 {"service": "node-shop", "ok": true}
//   GET /fail       an Error thrown by chargeCard (app code), recorded on the SERVER span; 500
// Prints "listening <port>" once it accepts connections; SIGTERM/SIGINT flush and exit.
'use strict';
const http = require('node:http');
const api = require('@opentelemetry/api');
const { BaggageSpanProcessor } = require('@opentelemetry/baggage-span-processor');
const {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} = require('@opentelemetry/core');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');

const [port, tracesUrl] = process.argv.slice(2);

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'node-shop' }),
  spanProcessors: [
    new BaggageSpanProcessor((key) => key.startsWith('posthog.')),
    new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl }), {
      scheduledDelayMillis: 200,
    }),
  ],
});
provider.register({
  propagator: new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
  }),
});
const tracer = api.trace.getTracer('node-shop');

function chargeCard(cart) {
  throw new Error(`card declined for cart ${cart}`);
}

function respond(response, status, body) {
  response.writeHead(status, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify(body));
}

function handle(request, response, span) {
  const path = new URL(request.url, 'http://127.0.0.1').pathname;
  if (path === '/checkout') {
    respond(response, 200, { service: 'node-shop', ok: true });
  } else if (path === '/fail') {
    try {
      chargeCard('c-9');
    } catch (error) {
      span.recordException(error);
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: error.message });
      respond(response, 500, { error: error.message });
    }
  } else {
    respond(response, 404, { error: 'not found' });
  }
  span.setAttribute('http.response.status_code', response.statusCode);
}

const server = http.createServer((request, response) => {
  const parent = api.propagation.extract(api.context.active(), request.headers);
  const path = new URL(request.url, 'http://127.0.0.1').pathname;
  const attributes = { 'http.request.method': request.method, 'url.path': path };
  tracer.startActiveSpan(
    `${request.method} ${path}`,
    { kind: api.SpanKind.SERVER, attributes },
    parent,
    (span) => {
      try {
        handle(request, response, span);
      } finally {
        span.end();
      }
    }
  );
});

server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`listening ${port}\n`);
});

async function stop() {
  server.close();
  await provider.shutdown();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
