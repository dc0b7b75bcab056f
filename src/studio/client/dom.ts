// Building the page with DOM calls only: text is always set as text, never parsed as HTML
// (the Content-Security-Policy's Trusted Types would refuse it anyway).

/** What may be a child: a node, text, or nothing (skipped). */
export type Child = Node | string | number | null | undefined | false;

type Handler = (event: Event) => void;

/** Attributes by name; `on<event>` takes a listener; `true` sets an empty attribute; `false`/`null` skip it. */
export type Attributes = Record<string, string | number | boolean | null | undefined | Handler>;

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "selected", "indeterminate"]);

function apply(element: Element, attributes: Attributes): void {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (PROPERTIES.has(name)) {
      (element as unknown as Record<string, unknown>)[name] = value;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else if (value !== false) {
      element.setAttribute(name, String(value));
    }
  }
}

function append(parent: Node, children: ReadonlyArray<Child | readonly Child[]>): void {
  for (const child of children) {
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else if (child !== null && child !== undefined && child !== false)
      parent.appendChild(document.createTextNode(String(child)));
  }
}

/** Creates an HTML element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Array<Child | readonly Child[]>
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  apply(element, attributes);
  append(element, children);
  return element;
}

const SVG = "http://www.w3.org/2000/svg";

/** Creates an SVG element with attributes and children. */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Array<Child | readonly Child[]>
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  apply(element, attributes);
  append(element, children);
  return element;
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Array<Child | readonly Child[]>): void {
  parent.replaceChildren();
  append(parent, children);
}

let counter = 0;

/** A fresh element id with `prefix`, for `for`, `aria-labelledby` and `aria-controls`. */
export function uid(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled form field: the label above the control, an optional hint tied by `aria-describedby`. */
export function field(
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): HTMLDivElement {
  control.id ||= uid("field");
  const hintNode = hint ? h("p", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintNode);
}

/** A `<select>` from `[value, label]` pairs. */
export function select(options: Array<[string, string]>, selected: string, attributes: Attributes = {}) {
  return h(
    "select",
    attributes,
    options.map(([value, label]) => h("option", { value, selected: value === selected }, label)),
  );
}

/** A table wrapped so it scrolls sideways on a narrow screen instead of widening the page. */
export function table(caption: string, headings: string[], rows: Array<Array<Child | readonly Child[]>>) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headings.map((heading) => h("th", { scope: "col" }, heading)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((cells) =>
          h(
            "tr",
            {},
            cells.map((cell) => h("td", {}, cell)),
          ),
        ),
      ),
    ),
  );
}

/** A status message area (`role=status`, polite) whose text can be set. */
export function statusLine(): HTMLParagraphElement {
  return h("p", { class: "status", role: "status" });
}

/** Shows an error in an `role=alert` box, or clears it with `null`. */
export function showError(box: HTMLElement, error: unknown): void {
  if (error === null) {
    box.replaceChildren();
    box.hidden = true;
    return;
  }
  box.hidden = false;
  replace(box, error instanceof Error ? error.message : String(error));
}

/** An alert box for errors, hidden while empty. */
export function errorBox(): HTMLDivElement {
  return h("div", { class: "error", role: "alert", hidden: true });
}
