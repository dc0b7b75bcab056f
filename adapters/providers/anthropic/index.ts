/**
 * Anthropic provider: `import { anthropicProvider } from "kilo/providers/anthropic"`.
 * Needs the optional peer dependency `@anthropic-ai/sdk` unless the host passes its own `client`.
 *
 * @module
 */
export type {
  AnthropicCacheControl,
  AnthropicClient,
  AnthropicContentParam,
  AnthropicMessageCreateParams,
  AnthropicMessageParam,
  AnthropicProviderOptions,
  AnthropicRedactedThinkingParam,
  AnthropicRequestOptions,
  AnthropicTextParam,
  AnthropicThinkingParam,
  AnthropicToolParam,
  AnthropicToolResultParam,
  AnthropicToolUseParam,
} from "./anthropic-provider.js";
export { anthropicProvider } from "./anthropic-provider.js";
