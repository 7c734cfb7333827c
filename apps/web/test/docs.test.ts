// docs/web.md says what the page tells people and which save paths exist: keep it true to the code.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { describeError, errorFromCode, SavePathError, type SaveMode } from "@personal-server/artifacts/browser";

const doc = readFileSync(new URL("../../../docs/web.md", import.meta.url), "utf8");

describe("docs/web.md", () => {
  it("shows the page's message for each error code it names", () => {
    const section = doc.slice(doc.indexOf("## What the page tells the person"));
    const messages = [...section.matchAll(/^\| [^|]+ \| ([^|]+?) \|$/gm)].map((m) => m[1]!.trim()).filter((m) => m !== "message" && !m.startsWith("---"));
    const codes = [...section.matchAll(/`(not_found|expired|integrity|storage_unavailable|unauthenticated|conflict|save_path)`/g)].map((m) => m[1]!);
    expect(codes).toEqual(["not_found", "expired", "integrity", "storage_unavailable", "unauthenticated", "conflict", "save_path"]);
    const errorFor = (code: string) => (code === "save_path" ? new SavePathError("opfs", "detail") : errorFromCode(code, "detail"));
    expect(messages).toEqual(codes.map((code) => describeError(errorFor(code)).title));
  });

  it("names every save path the client has, and the link parameter that forces each", () => {
    const modes: SaveMode[] = ["service-worker", "opfs", "blob"];
    for (const mode of modes) expect(doc).toContain(`#save=${mode}`);
  });
});
