// A Node.js service as people write one with the OpenTelemetry SDK: the person and session
// are set on the root SERVER span only, an exception is recorded on a child span, and an
// outgoing call carries the W3C trace context to the next service, with the person, session
// and a tag as `posthog.*` W3C baggage members.
//
// Usage: node otel_export.js <protobuf|json> <traces url> [next service url]
// Prints one JSON line: {"traceId": ..., "rootSpanId": ..., "childSpanId": ...} and, with a next
// service, its "nextStatus" and "nextBody" (text).
'use strict';
const api = require('@opentelemetry/api');
const {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');

const [format, tracesUrl, nextUrl] = process.argv.slice(2);
const { OTLPTraceExporter } =
  format === 'json'
    ? require('@opentelemetry/exporter-trace-otlp-http')
    : require('@opentelemetry/exporter-trace-otlp-proto');

async function main() {
  const exporter = new OTLPTraceExporter({
    url: tracesUrl,
    compression: 'gzip',
    headers: { Authorization: `Bearer ${process.env.POSTHOG_API_KEY}` },
  });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'node-checkout' }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register({
    propagator: new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  });
  const tracer = api.trace.getTracer('checkout');
  const ids = {};
  await tracer.startActiveSpan(
    'POST /checkout',
    {
      kind: api.SpanKind.SERVER,
      attributes: {
        'posthog.distinct_id': 'node-user-1',
        'posthog.session_id': 'node-session-1',
        'posthog.tag.plan': 'pro',
        'http.request.method': 'POST',
        'url.path': '/checkout',
      },
    },
    async (root) => {
      ids.traceId = root.spanContext().traceId;
      ids.rootSpanId = root.spanContext().spanId;
      await tracer.startActiveSpan('parse cart', async (child) => {
        ids.childSpanId = child.spanContext().spanId;
        try {
          JSON.parse('{"items": [');
        } catch (error) {
          child.recordException(error);
          child.setStatus({ code: api.SpanStatusCode.ERROR, message: error.message });
        }
        child.end();
      });
      if (nextUrl) {
        const baggage = api.propagation.createBaggage({
          'posthog.distinct_id': { value: 'node-user-1' },
          'posthog.session_id': { value: 'node-session-1' },
          'posthog.tag.plan': { value: 'pro' },
        });
        const headers = {};
        api.propagation.inject(api.propagation.setBaggage(api.context.active(), baggage), headers);
        const response = await fetch(nextUrl, { headers });
        ids.nextStatus = response.status;
        ids.nextBody = await response.text();
      }
      root.end();
    }
  );
  await provider.forceFlush();
  await provider.shutdown();
  process.stdout.write(JSON.stringify(ids) + '\n');
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack) + '\n');
  process.exit(1);
});
