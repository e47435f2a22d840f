// A Go service as people write one with the OpenTelemetry Go SDK: net/http wrapped by otelhttp
// (the SERVER span of each request continues the caller's W3C trace context and baggage),
// contrib's baggagecopy span processor copying the `posthog.*` baggage members to span
// attributes, and the OTLP/HTTP exporter (protobuf) sending to the URL it is given.
//
// Usage: go-shop <port> <OTLP traces URL, e.g. http://127.0.0.1:4318/v1/traces>
//
//	GET /checkout   200 {"service": "go-shop", "ok": true}
//	GET /fail       records an error with its stack on the SERVER span and answers 500
//
// Prints "listening <port>" once it accepts connections; SIGTERM/SIGINT flush and exit.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/contrib/processors/baggagecopy"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// posthogMembers keeps the baggage members that carry PostHog identity and tags.
func posthogMembers(member baggage.Member) bool {
	return strings.HasPrefix(member.Key(), "posthog.")
}

func newProvider(ctx context.Context, tracesURL string) (*sdktrace.TracerProvider, error) {
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(tracesURL))
	if err != nil {
		return nil, err
	}
	res := resource.NewSchemaless(semconv.ServiceName("go-shop"))
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(baggagecopy.NewSpanProcessor(posthogMembers)),
		sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(200*time.Millisecond)),
	), nil
}

// errCardDeclined is what the payment step returns for every cart.
var errCardDeclined = errors.New("card declined")

func chargeCard(cart string) error {
	return fmt.Errorf("charge cart %s: %w", cart, errCardDeclined)
}

func checkout(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"service": "go-shop", "ok": true}`))
}

func fail(w http.ResponseWriter, r *http.Request) {
	if err := chargeCard("c-9"); err != nil {
		span := trace.SpanFromContext(r.Context())
		span.RecordError(err, trace.WithStackTrace(true))
		span.SetStatus(codes.Error, err.Error())
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func run(port, tracesURL string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	provider, err := newProvider(ctx, tracesURL)
	if err != nil {
		return err
	}
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", checkout)
	mux.HandleFunc("GET /fail", fail)
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: otelhttp.NewHandler(mux, "go-shop"), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(listener) }()
	fmt.Printf("listening %s\n", port)
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = server.Shutdown(shutdownCtx)
	return provider.Shutdown(shutdownCtx)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go-shop <port> <OTLP traces URL>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
