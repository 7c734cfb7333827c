/**
 * node:crypto's AES-256-GCM as the engine's piece cipher (the SDK's uploads and reads in Node).
 * On the main thread, a piece or a chunk at a time, it measured faster here than WebCrypto's
 * thread-pool jobs, which copy every chunk in and out and queue behind the file reads
 * (docs/performance.md, "How the crypto is scheduled").
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { TAG_BYTES } from "./engine/format.js";
import type { PieceCipher } from "./engine/pieces.js";

export const nodePieceCipher: PieceCipher = {
  sealer(rawKey, nonce) {
    const cipher = createCipheriv("aes-256-gcm", rawKey, nonce, { authTagLength: TAG_BYTES });
    return {
      update: (piece) => cipher.update(piece),
      final: () => {
        cipher.final();
        return cipher.getAuthTag();
      },
    };
  },
  open(rawKey, nonce, stored) {
    if (stored.length < TAG_BYTES) throw new Error(`stored chunk of ${stored.length} bytes is shorter than its tag`);
    const decipher = createDecipheriv("aes-256-gcm", rawKey, nonce, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(stored.subarray(stored.length - TAG_BYTES));
    const plain = decipher.update(stored.subarray(0, stored.length - TAG_BYTES));
    decipher.final(); // throws unless the tag verifies: nothing is returned before that
    return plain;
  },
};
