import type { Socket } from "node:net";

/** What Node's HTTP parser refused, as the API's error shape: status, code and a plain message. */
function describe(error: NodeJS.ErrnoException): { status: number; reason: string; code: string; message: string } {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, reason: "Request Header Fields Too Large", code: "too_large", message: "the request line and headers are larger than 16 KiB" };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, reason: "Request Timeout", code: "invalid_input", message: "the request headers did not arrive in time" };
    case "HPE_INVALID_METHOD":
      return { status: 400, reason: "Bad Request", code: "invalid_input", message: "malformed HTTP request: unknown method" };
    case "HPE_INVALID_URL":
      return { status: 400, reason: "Bad Request", code: "invalid_input", message: "malformed HTTP request: the request target may hold only printable ASCII (percent-encoding is not accepted either)" };
    default:
      return { status: 400, reason: "Bad Request", code: "invalid_input", message: `malformed HTTP request (${error.code ?? "unparseable"})` };
  }
}

/**
 * Answers requests Node's HTTP parser refuses (raw non-ASCII or control bytes in the target,
 * broken framing, oversized headers, header timeouts) with the API's JSON error instead of
 * Fastify's default body, then closes the connection: after a parse error the stream is unusable.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const { status, reason, code, message } = describe(error);
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}
