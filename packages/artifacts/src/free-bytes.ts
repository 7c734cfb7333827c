/**
 * Frees a piece's memory now, for pieces their holder knows nobody else references: ES2024's
 * `ArrayBuffer.prototype.transfer(0)` detaches the buffer. V8 frees a dead buffer only when a
 * collection runs, and runs one for buffers only after several MiB of them have piled up, so a
 * stream of fresh buffers costs a full collection every few MiB without this (docs/performance.md,
 * "Memory"). Only a piece that is the whole of its ArrayBuffer, and more than 8 KiB, is freed:
 * never a view into a shared buffer (Node's 8 KiB pool for small Buffers among them).
 */
export function freeBytes(piece: Uint8Array): void {
  const { buffer } = piece;
  if (buffer instanceof ArrayBuffer && piece.byteOffset === 0 && piece.byteLength === buffer.byteLength && buffer.byteLength > 8192) {
    (buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
  }
}
