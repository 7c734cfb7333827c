/**
 * node:crypto's AES-256-GCM as the engine's piece cipher (the SDK's uploads in Node). Sealing each
 * piece as it arrives on the main thread measured faster here than WebCrypto's thread-pool jobs,
 * which copy every chunk in and out and queue behind the file reads (docs/performance.md).
 */
import { createCipheriv } from "node:crypto";
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
};
