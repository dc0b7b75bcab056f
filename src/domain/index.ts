export * from "./bot.js";
export * from "./common.js";
export * from "./conversation.js";
export * from "./memory.js";
export * from "./proposal.js";
export * from "./skill.js";
export * from "./usage.js";
export * from "./user.js";
