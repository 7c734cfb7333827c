import type { Readable } from "node:stream";
import { freeBytes } from "@personal-server/artifacts/internal";
import type { FastifyReply } from "fastify";

/**
 * Sends `body` as the response (status and headers as set on `reply`) for a body whose pieces
 * nobody else holds: plaintext the engine has just produced, or pieces a file stream has just
 * read. Each piece is written with a callback and its memory freed (`freeBytes`) as soon as the
 * socket has taken it. V8 frees a dead buffer only when a collection runs, and it runs one for buffers only
 * after several MiB of them: with Fastify's `pipe` a 1 GiB download cost a full collection every
 * ~25 ms, a third of the server's time (docs/performance.md, "Memory").
 *
 * A body that fails before its first piece throws here (the caller answers the error as usual);
 * one that fails later destroys the connection (never a clean end), after `onError`. A client
 * that goes away stops the body (its file is closed).
 */
export async function sendOwnedBody(reply: FastifyReply, body: Readable, onError: (error: unknown) => void): Promise<void> {
  const pieces = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  let next: IteratorResult<Uint8Array>;
  try {
    next = await pieces.next();
  } catch (error) {
    body.destroy();
    throw error;
  }
  reply.hijack();
  const res = reply.raw;
  res.statusCode = reply.statusCode;
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) res.setHeader(name, value as string | number | string[]);
  }
  let closed = false;
  let wake: (() => void) | undefined;
  const onClose = (): void => {
    closed = true;
    wake?.();
  };
  res.once("close", onClose);
  void (async () => {
    try {
      for (; !next.done && !closed; next = await pieces.next()) {
        const piece = next.value;
        if (!res.write(piece, () => freeBytes(piece)) && !closed) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            res.once("drain", resolve);
          });
          res.off("drain", wake!);
          wake = undefined;
        }
      }
      if (!closed) res.end();
    } catch (error) {
      onError(error);
      res.destroy();
    } finally {
      res.off("close", onClose);
      body.destroy();
    }
  })();
}
