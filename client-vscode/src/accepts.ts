// Partial accepts of inline suggestions, for the server's local record of what was accepted
// (completion/feedback.py): a word or a line taken with Ctrl+Right counts as taken, with how much of it.

/** The server command an inline item carries ([id]); VS Code runs it after inserting the item whole. */
export const ACCEPTED_COMMAND = "greenpatch.accepted";

interface CommandLike {
  command: string;
  arguments?: unknown[];
}

/** What VS Code reports of a partial accept: the length accepted so far, or (later versions) an object with it. */
export type PartialAccept = number | { acceptedLength?: number };

/**
 * The server command's arguments that record the first `accepted` characters of an item as taken ([id, chars]):
 * undefined for an item the server does not record (no command of its own) or a report without a usable length.
 */
export function partialAcceptArguments(
  command: CommandLike | undefined,
  accepted: PartialAccept,
): [string, number] | undefined {
  if (!command || command.command !== ACCEPTED_COMMAND) return undefined;
  const id = command.arguments?.[0];
  const length = typeof accepted === "number" ? accepted : accepted?.acceptedLength;
  if (typeof id !== "string" || typeof length !== "number" || !Number.isInteger(length) || length <= 0) {
    return undefined;
  }
  return [id, length];
}
