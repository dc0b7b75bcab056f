import { describe, expect, it } from "vitest";
import { answersApproval } from "../../src/index.js";

describe("answersApproval: the user's own answer to a waiting risky call", () => {
  it("takes an explicit yes or no, and nothing that only acknowledges", () => {
    const cases: Array<[string, "approved" | "denied" | null]> = [
      ["yes", "approved"],
      ["Yes, go ahead", "approved"],
      ["  go ahead and refund her", "approved"],
      ["Sure", "approved"],
      ["I approve", "approved"],
      ["Confirmed.", "approved"],
      ["no", "denied"],
      ["No, cancel that", "denied"],
      ["don't send it", "denied"],
      ["Not now", "denied"],
      ["ok", null],
      ["ok thanks", null],
      ["fine", null],
      ["yesterday's order was wrong", null],
      ["nobody asked", null],
      ["What is waiting?", null],
    ];
    expect(cases.map(([message]) => [message, answersApproval(message)])).toEqual(cases);
  });
});
