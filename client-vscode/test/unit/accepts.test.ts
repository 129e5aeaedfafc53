import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ACCEPTED_COMMAND, partialAcceptArguments } from "../../src/accepts";

const item = { command: ACCEPTED_COMMAND, arguments: ["3f2a9c"] };

describe("partial accepts", () => {
  it("record the item's id with the length accepted, as VS Code reports it either way", () => {
    assert.deepEqual(partialAcceptArguments(item, 7), ["3f2a9c", 7]);
    assert.deepEqual(partialAcceptArguments(item, { acceptedLength: 12 }), ["3f2a9c", 12]);
  });

  it("leave alone an item the server does not record", () => {
    assert.equal(partialAcceptArguments(undefined, 7), undefined);
    assert.equal(partialAcceptArguments({ command: "other.command", arguments: ["3f2a9c"] }, 7), undefined);
    assert.equal(partialAcceptArguments({ command: ACCEPTED_COMMAND, arguments: [] }, 7), undefined);
  });

  it("send nothing for a report without a usable length", () => {
    for (const bad of [0, -1, 2.5, Number.NaN, {}]) assert.equal(partialAcceptArguments(item, bad), undefined);
  });
});
