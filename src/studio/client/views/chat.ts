// Chat: talk to a bot, streamed. Each reply shows which skill handled it and how, the thinking
// summary, the tool calls (pending ones with Approve and Deny), the memories written and the cost.

import { withQuery } from "../api.js";
import { errorBox, field, h, replace, showError, statusLine, uid } from "../dom.js";
import { count, matchPass, percent, pretty, usd } from "../format.js";
import type { Studio } from "../studio.js";
import type { ApprovalOutcome, ToolApproval, TurnResult, TurnToolCall } from "../types.js";

/** One bot's conversation, kept while the page is open so switching views does not lose it. */
interface Session {
  conversationId: string | null;
  log: HTMLOListElement;
}

const sessions = new Map<string, Session>();

function sessionFor(botId: string): Session {
  let session = sessions.get(botId);
  if (!session) {
    session = {
      conversationId: null,
      log: h("ol", { class: "transcript", role: "log", "aria-label": "Conversation" }),
    };
    sessions.set(botId, session);
  }
  return session;
}

/** The approval id a tool call's result is waiting on, if it is. */
export function pendingApprovalOf(call: TurnToolCall): string | null {
  const result = call.result as { status?: unknown; approvalId?: unknown } | null;
  return result && result.status === "awaiting_approval" && typeof result.approvalId === "string"
    ? result.approvalId
    : null;
}

function message(role: "user" | "assistant", who: string, text: string) {
  const body = h("p", { class: "text" }, text);
  const details = h("div", { class: "details" });
  const element = h(
    "li",
    { class: `message ${role}` },
    h("p", { class: "who" }, who),
    h("div", { class: "bubble" }, body),
    details,
  );
  return { element, body, details };
}

/**
 * Approve and Deny buttons for one pending call. Every set of buttons for the same approval (in the
 * transcript and in the pending list) is replaced by the decision once one of them is used.
 */
function approvalActions(
  studio: Studio,
  approvalId: string,
  what: string,
  onOutcome: (outcome: ApprovalOutcome) => void,
) {
  const error = errorBox();
  const decide = async (decision: "approve" | "deny", buttons: HTMLButtonElement[]) => {
    for (const button of buttons) button.disabled = true;
    showError(error, null);
    try {
      const outcome = await studio.api.post<ApprovalOutcome>(
        withQuery(`api/approvals/${encodeURIComponent(approvalId)}/${decision}`, { botId: studio.bot.id }),
      );
      const text =
        decision === "approve"
          ? `Approved: sent.${outcome.result ? ` It returned: ${outcome.result.content.slice(0, 300)}` : ""}`
          : "Denied: nothing was sent.";
      for (const box of document.querySelectorAll<HTMLElement>(
        `[data-approval="${CSS.escape(approvalId)}"]`,
      )) {
        replace(box, h("p", { class: "decided" }, text));
      }
      studio.announce(text);
      onOutcome(outcome);
    } catch (failure) {
      for (const button of buttons) button.disabled = false;
      showError(error, failure);
    }
  };
  // The call's name is read to screen-reader users, so two pending calls' buttons differ.
  const approve = h(
    "button",
    { type: "button", class: "primary" },
    "Approve",
    h("span", { class: "visually-hidden" }, ` ${what}`),
  );
  const deny = h("button", { type: "button" }, "Deny", h("span", { class: "visually-hidden" }, ` ${what}`));
  approve.addEventListener("click", () => decide("approve", [approve, deny]));
  deny.addEventListener("click", () => decide("deny", [approve, deny]));
  return h("div", { class: "approval-actions", "data-approval": approvalId }, approve, deny, error);
}

/** `tool.endpoint` of a `call_api` call, else the tool's name. */
function callLabel(call: TurnToolCall): string {
  const { tool, endpoint } = call.input as { tool?: unknown; endpoint?: unknown };
  return typeof tool === "string" && typeof endpoint === "string" ? `${tool}.${endpoint}` : call.name;
}

function toolCallItem(studio: Studio, call: TurnToolCall, onOutcome: (outcome: ApprovalOutcome) => void) {
  const approvalId = pendingApprovalOf(call);
  const state = approvalId
    ? h("span", { class: "badge draft" }, "waiting for approval")
    : call.isError
      ? h("span", { class: "badge error" }, "failed")
      : h("span", { class: "badge active" }, "ok");
  return h(
    "li",
    { class: "tool-call" },
    h("p", {}, h("code", {}, call.name), " ", state),
    h(
      "details",
      {},
      h("summary", {}, "Input and result"),
      h("pre", {}, pretty({ input: call.input, result: call.result })),
    ),
    approvalId ? approvalActions(studio, approvalId, callLabel(call), onOutcome) : null,
  );
}

/** What a turn did, under its reply. */
export function turnDetails(studio: Studio, turn: TurnResult, onOutcome: (outcome: ApprovalOutcome) => void) {
  const skill = turn.skill
    ? [
        h("strong", {}, turn.skill.name),
        ` · ${matchPass(turn.match.pass)}, ${percent(turn.match.confidence)} sure`,
      ]
    : [h("strong", {}, "No skill"), ` · ${matchPass(turn.match.pass)}`];
  return h(
    "div",
    { class: "turn-details" },
    h("p", { class: "turn-skill" }, "Skill: ", skill),
    turn.thinking
      ? h("details", { class: "thinking" }, h("summary", {}, "Thinking summary"), h("p", {}, turn.thinking))
      : null,
    turn.toolCalls.length > 0
      ? h(
          "div",
          {},
          h("h3", { class: "small" }, "Tool calls"),
          h(
            "ul",
            { class: "tool-calls" },
            turn.toolCalls.map((call) => toolCallItem(studio, call, onOutcome)),
          ),
        )
      : null,
    turn.memories.length > 0
      ? h(
          "div",
          {},
          h("h3", { class: "small" }, "Memories written"),
          h(
            "ul",
            { class: "memories" },
            turn.memories.map((memory) => h("li", {}, h("strong", {}, memory.key), `: ${memory.content}`)),
          ),
        )
      : h("p", { class: "muted" }, "No memories written."),
    h(
      "p",
      { class: "turn-cost" },
      `Cost ${usd(turn.usage.costUsd)} · ${count(turn.usage.calls)} model call${turn.usage.calls === 1 ? "" : "s"} · ${count(turn.usage.promptTokens)} tokens in, ${count(turn.usage.completionTokens)} out`,
    ),
  );
}

/** Chat with the selected bot. */
export function chatView(studio: Studio): HTMLElement {
  const { bot, api } = studio;
  const session = sessionFor(bot.id);
  const heading = h("h2", { id: uid("chat"), tabindex: -1 }, `Chat with ${bot.name}`);
  const pendingList = h("ul", { class: "pending-list" });
  const pendingHeading = h("h3", { id: uid("pending") }, "Waiting for your approval");
  const pending = h(
    "section",
    { class: "pending card", "aria-labelledby": pendingHeading.id, hidden: true },
    pendingHeading,
    pendingList,
  );
  const input = h("textarea", { rows: 3, name: "message", required: true, autocomplete: "off" });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const status = statusLine();
  const error = errorBox();
  const conversation = h("p", { class: "muted conversation-id" });
  const showConversation = () => {
    conversation.textContent = session.conversationId
      ? `Conversation ${session.conversationId}`
      : "A new conversation starts with your next message.";
  };
  showConversation();

  const addTurn = (turn: TurnResult, into?: ReturnType<typeof message>) => {
    const target = into ?? message("assistant", bot.name, "");
    if (!into) session.log.append(target.element);
    target.body.textContent = turn.reply;
    replace(target.details, turnDetails(studio, turn, onOutcome));
    session.conversationId = turn.conversationId;
    showConversation();
  };
  const onOutcome = (outcome: ApprovalOutcome) => {
    if (outcome.turn) addTurn(outcome.turn);
    else if (outcome.run) {
      // A workflow stopped at the call: its own run resumes with the decision (see the Runs view).
      const note = message("assistant", bot.name, `Run ${outcome.run.id} resumes with the decision.`);
      session.log.append(note.element);
    }
    void refreshPending();
  };

  async function refreshPending(): Promise<void> {
    try {
      const { items } = await api.get<{ items: ToolApproval[] }>(
        withQuery(`api/bots/${encodeURIComponent(bot.id)}/approvals`, { status: "pending" }),
      );
      pending.hidden = items.length === 0;
      replace(
        pendingList,
        items.map((approval) =>
          h(
            "li",
            {},
            h(
              "p",
              {},
              h("code", {}, `${approval.toolName}.${approval.endpoint}`),
              ` · ${approval.createdAt.slice(0, 19).replace("T", " ")}`,
            ),
            h("details", {}, h("summary", {}, "Input"), h("pre", {}, pretty(approval.input))),
            approvalActions(studio, approval.id, `${approval.toolName}.${approval.endpoint}`, onOutcome),
          ),
        ),
      );
    } catch (failure) {
      showError(error, failure);
    }
  }

  const busy = (on: boolean) => {
    send.disabled = on;
    session.log.setAttribute("aria-busy", String(on));
    status.textContent = on ? `${bot.name} is answering…` : "";
  };

  async function converse(text: string): Promise<void> {
    session.log.append(message("user", "You", text).element);
    const reply = message("assistant", bot.name, "");
    reply.element.classList.add("streaming");
    session.log.append(reply.element);
    const progress = h("ul", { class: "progress" });
    const thinking = h("p", { class: "thinking-live" });
    reply.details.append(thinking, progress);
    busy(true);
    showError(error, null);
    let streamed = "";
    let thought = "";
    try {
      await api.stream(
        "api/chat/stream",
        { botId: bot.id, message: text, conversationId: session.conversationId ?? undefined },
        (event, data) => {
          const frame = data as Record<string, unknown>;
          if (event === "text-delta") {
            streamed += String(frame.text ?? "");
            reply.body.textContent = streamed;
          } else if (event === "thinking-delta") {
            thought += String(frame.text ?? "");
            thinking.textContent = `Thinking: ${thought.slice(-300)}`;
          } else if (event === "thinking") {
            thinking.textContent = `Thought: ${String(frame.summary ?? "")}`;
          } else if (event === "tool-call") {
            progress.append(h("li", { "data-tool": String(frame.name) }, `Calling ${String(frame.name)}…`));
          } else if (event === "tool-result") {
            progress.append(h("li", {}, `${String(frame.name)} ${frame.isError ? "failed" : "returned"}`));
          } else if (event === "result") {
            addTurn((frame as { result: TurnResult }).result, reply);
          } else if (event === "error") {
            const body = frame as { error?: { message?: string } };
            throw new Error(body.error?.message ?? "The turn failed");
          }
        },
      );
    } catch (failure) {
      reply.element.classList.add("failed");
      showError(error, failure);
    } finally {
      reply.element.classList.remove("streaming");
      busy(false);
      void refreshPending();
    }
  }

  const form = h(
    "form",
    {
      class: "composer",
      onsubmit: (event: Event) => {
        event.preventDefault();
        const text = input.value.trim();
        if (text === "" || send.disabled) return;
        input.value = "";
        void converse(text);
      },
    },
    field("Message", input, "Enter sends; Shift+Enter starts a new line."),
    h(
      "div",
      { class: "actions" },
      send,
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            session.conversationId = null;
            session.log.replaceChildren();
            showConversation();
            studio.announce("New conversation");
            input.focus();
          },
        },
        "New conversation",
      ),
    ),
    status,
    error,
  );
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  void refreshPending();
  return h(
    "section",
    { class: "view chat", "aria-labelledby": heading.id },
    heading,
    conversation,
    pending,
    session.log,
    form,
  );
}
