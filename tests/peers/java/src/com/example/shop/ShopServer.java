// A Java service as people write one with the JDK's HTTP server and no framework, run under the
// OpenTelemetry Java agent (which makes the SERVER span of each request and copies `posthog.*`
// baggage to its attributes): nothing here knows about OpenTelemetry or PostHog.
//
// Usage: java -javaagent:opentelemetry-javaagent.jar -D... -cp classes com.example.shop.ShopServer PORT
//   GET /checkout   200 {"service": "java-shop", "ok": true}
//   GET /fail       an IllegalStateException thrown from Payments.charge (app code)
// Prints "listening <port>" once it accepts connections.
package com.example.shop;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

public final class ShopServer {
  private ShopServer() {}

  public static void main(String[] args) throws IOException {
    int port = Integer.parseInt(args[0]);
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
    server.createContext("/checkout", ShopServer::checkout);
    server.createContext("/fail", ShopServer::fail);
    server.setExecutor(Executors.newFixedThreadPool(4));
    server.start();
    System.out.println("listening " + port);
    System.out.flush();
  }

  private static void checkout(HttpExchange exchange) throws IOException {
    respond(exchange, 200, "{\"service\": \"java-shop\", \"ok\": true}");
  }

  private static void fail(HttpExchange exchange) throws IOException {
    exchange.getRequestBody().readAllBytes();
    Payments.charge("c-9");
  }

  private static void respond(HttpExchange exchange, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }
}
