import { describe, expect, it } from "vitest";

import { apply, complete, currentWord, quoteKey, vocabularyOf, type Vocabulary } from "./query";

const vocab: Vocabulary = {
  params: ["optimizer", "learning_rate", "weird key"],
  metrics: ["acc", "loss", "val_loss"],
  tags: ["team"],
  values: { "params.optimizer": ["adam", "adamw", "sgd"] },
};

describe("query bar completion", () => {
  it("finds the word under the cursor", () => {
    expect(currentWord("metrics.acc > 0.9 and par", 25)).toEqual({ start: 22, word: "par" });
    expect(currentWord("(met", 4)).toEqual({ start: 1, word: "met" });
  });

  it("offers field names that start with what was typed", () => {
    const labels = complete("metrics.acc > 0.9 and params.", 29, vocab).map((c) => c.label);
    expect(labels).toEqual(["params.optimizer", "params.learning_rate", "params.`weird key`"]);
    expect(complete("att", 3, vocab).map((c) => c.label)).toContain("attributes.status");
    expect(complete("", 0, vocab)).toEqual([]);
  });

  it("offers known values after a comparison and closes the quote", () => {
    const c = complete("params.optimizer = 'ad", 22, vocab);
    expect(c.map((x) => x.label)).toEqual(["adam", "adamw"]);
    expect(apply("params.optimizer = 'ad", 22, c[0])).toEqual({ text: "params.optimizer = 'adam'", cursor: 25 });
  });

  it("replaces only the word being typed", () => {
    const r = apply("metrics.acc > 0.9 and los rest", 25, { insert: "metrics.loss", label: "metrics.loss" });
    expect(r.text).toBe("metrics.acc > 0.9 and metrics.loss rest");
    expect(r.cursor).toBe(34);
  });

  it("quotes keys that are not identifiers", () => {
    expect(quoteKey("acc")).toBe("acc");
    expect(quoteKey("train/loss")).toBe("train/loss");
    expect(quoteKey("weird key")).toBe("`weird key`");
  });

  it("builds its vocabulary from the runs on screen", () => {
    const v = vocabularyOf([
      { params: { optimizer: "adam" }, tags: { team: "nlp" }, metrics: { acc: 0.9 } },
      { params: { optimizer: "sgd", lr: "0.1" }, tags: {}, metrics: { loss: 1 } },
    ]);
    expect(v.params).toEqual(["lr", "optimizer"]);
    expect(v.metrics).toEqual(["acc", "loss"]);
    expect(v.values["params.optimizer"]).toEqual(["adam", "sgd"]);
  });
});
