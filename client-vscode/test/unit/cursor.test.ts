import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type Clock, CursorReporter, type CursorParams, parsePreparing, PreparingState } from "../../src/cursor";

/** Timers the test advances by hand. */
class FakeClock implements Clock {
  now = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(timer: unknown): void {
    this.timers.delete(timer as number);
  }

  advance(ms: number): void {
    this.now += ms;
    for (const [id, timer] of [...this.timers]) {
      if (timer.at <= this.now) {
        this.timers.delete(id);
        timer.fn();
      }
    }
  }
}

const at = (line: number, character: number, version = 1): CursorParams => ({
  uri: "file:///a.py",
  version,
  position: { line, character },
});

describe("cursor notifications", () => {
  it("are sent once the cursor rests, not while it moves", () => {
    const clock = new FakeClock();
    const sent: CursorParams[] = [];
    const reporter = new CursorReporter((p) => sent.push(p), clock, 300);
    reporter.moved(at(1, 1));
    clock.advance(200);
    reporter.moved(at(2, 1));
    clock.advance(200);
    assert.deepEqual(sent, []);
    clock.advance(100);
    assert.deepEqual(sent, [at(2, 1)]);
  });

  it("are not repeated for the same place of the same version", () => {
    const clock = new FakeClock();
    const sent: CursorParams[] = [];
    const reporter = new CursorReporter((p) => sent.push(p), clock, 300);
    reporter.moved(at(2, 1));
    clock.advance(300);
    reporter.moved(at(2, 1));
    clock.advance(300);
    reporter.moved(at(2, 1, 2));
    clock.advance(300);
    assert.deepEqual(sent, [at(2, 1), at(2, 1, 2)]);
  });
});

describe("preparing notifications", () => {
  it("are checked, a malformed one ignored", () => {
    assert.deepEqual(parsePreparing({ uri: "u", position: { line: 1, character: 2 }, preparing: true }), {
      uri: "u",
      line: 1,
      character: 2,
      preparing: true,
    });
    assert.equal(parsePreparing({ uri: "u", position: { line: "1" }, preparing: true }), undefined);
    assert.equal(parsePreparing(null), undefined);
  });

  it("show only a preparation at the cursor that lasts", () => {
    const clock = new FakeClock();
    const changes: boolean[] = [];
    const state = new PreparingState((shown) => changes.push(shown), () => ({ uri: "u", line: 3 }), clock, 400);
    state.update({ uri: "u", line: 3, character: 0, preparing: true });
    clock.advance(100);
    state.update({ uri: "u", line: 3, character: 0, preparing: false });
    clock.advance(1000);
    assert.deepEqual(changes, [], "a short one never shows");
    state.update({ uri: "u", line: 9, character: 0, preparing: true });
    clock.advance(1000);
    assert.deepEqual(changes, [], "one elsewhere never shows");
    state.update({ uri: "u", line: 3, character: 0, preparing: true });
    clock.advance(400);
    state.update({ uri: "u", line: 3, character: 0, preparing: false });
    assert.deepEqual(changes, [true, false]);
  });
});
