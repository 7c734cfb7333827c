/**
 * FIFO of received buffers. Streams keep incoming pieces here by reference and cut exactly
 * one chunk at a time off the front, so input is never concatenated (the cipher reads the
 * pieces in place) and consuming n bytes costs O(pieces touched), not O(bytes pending).
 */
export class ByteQueue {
  // Consumed slots are cleared so their buffers can be collected; the array is compacted
  // lazily (amortised O(1)) instead of shift(), which is O(n) per call on 1-byte writes.
  private bufs: Array<Buffer | undefined> = [];
  private head = 0;
  /** Bytes pending. */
  length = 0;

  push(buf: Buffer): void {
    if (buf.length === 0) return;
    this.bufs.push(buf);
    this.length += buf.length;
  }

  /** Removes the next `n` bytes (n <= length), handing them to `fn` as consecutive zero-copy pieces. */
  consume(n: number, fn: (piece: Buffer) => void): void {
    let left = n;
    while (left > 0) {
      const buf = this.bufs[this.head];
      if (buf === undefined) throw new Error("ByteQueue underflow");
      if (buf.length <= left) {
        this.bufs[this.head] = undefined;
        this.head += 1;
        this.length -= buf.length;
        left -= buf.length;
        fn(buf);
      } else {
        this.bufs[this.head] = buf.subarray(left);
        this.length -= left;
        fn(buf.subarray(0, left));
        left = 0;
      }
    }
    if (this.head === this.bufs.length) {
      this.bufs = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.bufs.length) {
      this.bufs = this.bufs.slice(this.head);
      this.head = 0;
    }
  }

  /** Removes the next `n` bytes as one Buffer (a view when they sit in one piece, else a small copy). */
  take(n: number): Buffer {
    const pieces: Buffer[] = [];
    this.consume(n, (piece) => pieces.push(piece));
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, n);
  }
}
