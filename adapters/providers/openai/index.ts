/**
 * OpenAI, and OpenAI-compatible servers (Ollama, vLLM, llama.cpp server,
 * OpenRouter): `import { openaiProvider } from "kilo/providers/openai"`.
 * Needs the optional peer dependency `openai` unless the host passes its own client.
 *
 * @module
 */
export type {
  OpenAIChatMessage,
  OpenAIChatRequest,
  OpenAIClient,
  OpenAIFunctionTool,
  OpenAIProviderOptions,
  OpenAIRequestOptions,
  OpenAIToolCall,
} from "./openai-provider.js";
export { isOpenAIReasoningModel, openaiProvider } from "./openai-provider.js";
