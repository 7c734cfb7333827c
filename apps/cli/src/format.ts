import { InvalidInputError } from "@personal-server/artifacts";

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * Parses a size: `5MB` (10^6), `5MiB` (2^20), `1.5GB`, `512KiB`, `1024` (bytes). Decimal units are
 * decimal on purpose: "5MB" as people write it and Cloudflare's GB (10^9 bytes) are decimal.
 */
export function parseSize(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? "").toLowerCase() || "b"];
  if (!match || unit === undefined) {
    throw new InvalidInputError(`invalid size "${text}": use bytes or a unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 5MB)`);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new InvalidInputError(`size "${text}" is too large`);
  return bytes;
}

/** Parses a whole number option (`--ops-per-month 100`). */
export function parseCount(text: string, name: string, min = 0): number {
  const value = /^[0-9]+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidInputError(`${name} must be a whole number >= ${min}, got "${text}"`);
  }
  return value;
}

/** 1234567 -> "1.23 MB" (decimal, like the bills). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = "B";
  for (const u of units) {
    if (value < 1000) break;
    value /= 1000;
    unit = u;
  }
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${unit}`;
}

/** Dollars with enough digits for small bills: $0.00, $0.0049, $0.1058, $1.23, $104.40. */
export function formatUsd(amount: number): string {
  if (amount === 0) return "$0.00";
  if (amount >= 1) return `$${amount.toFixed(2)}`;
  const digits = amount < 0.0001 ? 6 : 4;
  return `$${amount.toFixed(digits).replace(/(\.\d\d\d*?)0+$/, "$1")}`;
}

/** A unit price: $4.50, $0.36, $0.015, $0.0004. */
export function formatPrice(price: number): string {
  return Number.isInteger(Math.round(price * 1e6) / 1e4) ? `$${price.toFixed(2)}` : `$${price}`;
}

/** Seconds -> "7d", "36h", "90m", "45s" (the largest unit that divides it). */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60]] as const) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** Renders rows as a left-aligned text table (first row is the header). */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd());
}
