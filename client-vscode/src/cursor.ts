// Where the cursor rests, for the server to prepare a suggestion there ahead, and the server's word that it does.
//
// The server evaluates a suggestion's prompt while its engine is idle (server/greenpatch/completion/ahead.py); the
// place it is most likely needed next is where the cursor rests. The extension tells it with the custom
// `greenpatch/cursor` notification, debounced (other clients simply do not send it), and the server answers with
// `greenpatch/preparing` while it prepares a place, which the status bar shows when that place is at the cursor.
// Pure but the timers (injected), so that the unit tests run under plain Node.

export const CURSOR_NOTIFICATION = "greenpatch/cursor";
export const PREPARING_NOTIFICATION = "greenpatch/preparing";

/** How long the cursor must stay put before the server hears of it: moving through a file sends nothing. */
export const CURSOR_REST_MS = 300;
/** A preparation shorter than this never shows in the status bar (no flicker while typing). */
export const PREPARING_SHOWN_AFTER_MS = 400;

export interface CursorParams {
  uri: string;
  version: number;
  position: { line: number; character: number };
}

export interface Preparing {
  uri: string;
  line: number;
  character: number;
  preparing: boolean;
}

/** Checks a `greenpatch/preparing` notification's params; undefined when malformed (it is then ignored). */
export function parsePreparing(raw: unknown): Preparing | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const { uri, position, preparing } = raw as Record<string, unknown>;
  if (typeof uri !== "string" || typeof preparing !== "boolean" || typeof position !== "object" || position === null) {
    return undefined;
  }
  const { line, character } = position as Record<string, unknown>;
  if (!Number.isInteger(line) || !Number.isInteger(character)) return undefined;
  return { uri, line: line as number, character: character as number, preparing };
}

/** Whether a place being prepared is the cursor's (same document, same line): only that one is worth showing. */
export function atCursor(place: Preparing, cursor: { uri: string; line: number } | undefined): boolean {
  return cursor !== undefined && place.uri === cursor.uri && place.line === cursor.line;
}

type Timer = unknown;
export interface Clock {
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
}

/** Sends the cursor's place once it has rested CURSOR_REST_MS; a move before that restarts the wait. */
export class CursorReporter {
  private timer: Timer | undefined;
  private last = "";

  constructor(
    private readonly send: (params: CursorParams) => void,
    private readonly clock: Clock,
    private readonly restMs: number = CURSOR_REST_MS,
  ) {}

  moved(params: CursorParams): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const key = JSON.stringify(params);
      if (key === this.last) return; // the same place of the same version: prepared already
      this.last = key;
      this.send(params);
    }, this.restMs);
  }

  dispose(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Tracks the server's preparations and says, after PREPARING_SHOWN_AFTER_MS, whether one is at the cursor. */
export class PreparingState {
  private current: Preparing | undefined;
  private timer: Timer | undefined;
  shown = false;

  constructor(
    private readonly onChange: (shown: boolean) => void,
    private readonly cursor: () => { uri: string; line: number } | undefined,
    private readonly clock: Clock,
    private readonly delayMs: number = PREPARING_SHOWN_AFTER_MS,
  ) {}

  update(place: Preparing): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (!place.preparing) {
      if (this.current && this.current.uri === place.uri && this.current.line === place.line) this.current = undefined;
      this.set(false);
      return;
    }
    this.current = place;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.set(this.current !== undefined && atCursor(this.current, this.cursor()));
    }, this.delayMs);
  }

  private set(shown: boolean): void {
    if (shown === this.shown) return;
    this.shown = shown;
    this.onChange(shown);
  }

  dispose(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
  }
}
