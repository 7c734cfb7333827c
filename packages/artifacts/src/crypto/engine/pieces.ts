// A synchronous cipher for the engine (Node's node:crypto), and streaming encryption through it.
import { InvalidInputError } from "../../errors.js";
import { chunkNonce } from "./format.js";
import { deriveArtifactKeyBytes } from "./keys.js";
import type { EncryptOptions, Source, Transformed } from "./stream.js";

/** One chunk's AES-256-GCM encryption, fed in pieces of any size. */
export interface PieceSealer {
  /** The ciphertext of `piece` (same length); the cipher keeps no reference to either. */
  update(piece: Uint8Array): Uint8Array;
  /** The chunk's 16-byte tag; the sealer is done. */
  final(): Uint8Array;
}

/**
 * A synchronous AES-256-GCM (Node: `node:crypto`; WebCrypto has no such thing) that seals a chunk
 * piece by piece as its bytes arrive, and opens whole stored chunks. `pieceCipher` in the options
 * of `encrypt`, `decrypt`, `decryptObject` and `decryptRange` makes them use it instead of
 * WebCrypto: no job goes to a thread pool, and `encrypt` copies no chunk together first.
 */
export interface PieceCipher {
  sealer(rawKey: Uint8Array, nonce: Uint8Array): PieceSealer;
  /** The plaintext of one stored chunk (ciphertext || 16-byte tag); throws unless the tag verifies. */
  open(rawKey: Uint8Array, nonce: Uint8Array, stored: Uint8Array): Uint8Array;
}

/**
 * `encrypt` through a piece cipher: byte for byte the same object. Each chunk is begun under its
 * non-final nonce and its ciphertext held until a byte after it arrives; the chunk the input ends
 * in is then re-sealed under the final nonce (CTR: encrypting the held ciphertext under the same
 * nonce gives its plaintext back), so nothing is copied to wait for the end.
 */
export function encryptPieces(
  source: Source,
  opts: EncryptOptions,
  start: { chunkSize: number; salt: Uint8Array; header: Uint8Array },
  cipher: PieceCipher,
  transformed: (run: (count: (n: number) => void) => AsyncGenerator<Uint8Array>) => Transformed,
): Transformed {
  const { chunkSize, salt, header } = start;
  return transformed(async function* (count) {
    const key = await deriveArtifactKeyBytes(opts.dataKey, salt, opts.operationId, opts.path);
    yield header;
    let index = 0;
    let sealer = cipher.sealer(key, chunkNonce(0, false));
    let held: Uint8Array[] = [];
    let fill = 0;
    for await (const piece of source as AsyncIterable<unknown>) {
      if (!(piece instanceof Uint8Array)) throw new InvalidInputError("stream pieces must be Uint8Array");
      for (let at = 0; at < piece.length; ) {
        if (fill === chunkSize) {
          // A byte after a full chunk: that chunk was not the final one.
          held.push(sealer.final());
          for (const out of held) yield out;
          held = [];
          fill = 0;
          sealer = cipher.sealer(key, chunkNonce(++index, false));
        }
        const n = Math.min(chunkSize - fill, piece.length - at);
        held.push(sealer.update(n === piece.length ? piece : piece.subarray(at, at + n)));
        fill += n;
        at += n;
      }
      count(piece.length);
    }
    // The input ended in chunk `index` (0..C bytes, empty for no input): it is the final one.
    const undo = cipher.sealer(key, chunkNonce(index, false));
    const last = cipher.sealer(key, chunkNonce(index, true));
    for (const out of held) yield last.update(undo.update(out));
    yield last.final();
  });
}
