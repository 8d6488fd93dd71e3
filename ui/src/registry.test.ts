import { describe, expect, it } from "vitest";

import { VERSION_PAGE, shownVersions } from "./registry";
import type { ModelVersion } from "./wire";

const versions = (n: number) => Array.from({ length: n }, (_, i) => ({ version: i + 1 }) as ModelVersion);

describe("the registry screen's versions", () => {
  it("shows the newest page first and every version on request", () => {
    const many = versions(VERSION_PAGE * 2 + 5);
    const page = shownVersions(many, false);
    expect(page.length).toBe(VERSION_PAGE);
    expect(page[0].version).toBe(many.length);
    expect(page[VERSION_PAGE - 1].version).toBe(many.length - VERSION_PAGE + 1);
    const all = shownVersions(many, true);
    expect(all.map((v) => v.version)).toEqual(many.map((v) => v.version).reverse());
    expect(many[0].version).toBe(1);
  });

  it("shows a small model whole", () => {
    expect(shownVersions(versions(3), false).map((v) => v.version)).toEqual([3, 2, 1]);
  });
});
