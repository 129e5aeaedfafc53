// Inline completions asked of the server by the extension's own provider instead of the language client's, whose
// provider VS Code cannot tell about partial accepts (vscode-languageclient 11 implements only
// provideInlineCompletionItems). VS Code reports them through handleDidPartiallyAcceptCompletionItem, part of its
// proposed inlineCompletionsAdditions API up to the engine this extension targets (1.91): VS Code calls it where
// that proposal is enabled for the extension (a development host with --enable-proposed-api greenpatch.greenpatch),
// and never otherwise, where a word taken is still seen by the server as typing along the suggestion.

import * as vscode from "vscode";
import { ExecuteCommandRequest, InlineCompletionRequest, type LanguageClient } from "vscode-languageclient/node";

import { ACCEPTED_COMMAND, type PartialAccept, partialAcceptArguments } from "./accepts";

export class InlineProvider implements vscode.InlineCompletionItemProvider {
  constructor(private readonly client: LanguageClient) {}

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined> {
    const client = this.client;
    const params = client.code2ProtocolConverter.asInlineCompletionParams(document, position, context);
    try {
      const result = await client.sendRequest(InlineCompletionRequest.type, params, token);
      if (token.isCancellationRequested) return null;
      return await client.protocol2CodeConverter.asInlineCompletionResult(result, token);
    } catch (error) {
      return client.handleFailedRequest(InlineCompletionRequest.type, token, error, null);
    }
  }

  /** VS Code inserted the first characters of `item` (a word, a line): record them as taken. */
  handleDidPartiallyAcceptCompletionItem(item: vscode.InlineCompletionItem, accepted: PartialAccept): void {
    const args = partialAcceptArguments(item.command, accepted);
    if (!args || !this.client.isRunning()) return;
    this.client
      .sendRequest(ExecuteCommandRequest.type, { command: ACCEPTED_COMMAND, arguments: args })
      .catch((error: unknown) => this.client.warn(`recording a partial accept: ${String(error)}`));
  }
}
