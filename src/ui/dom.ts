// A tiny element builder: text always goes in as text nodes, so API data never becomes markup.

type Child = Node | string | number | null | undefined | false;

/**
 * Creates an HTML element with attributes and children.
 *
 * @example
 * h('button', { type: 'button', class: 'danger' }, 'Kill switch');
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Creates an SVG element with attributes and children.
 *
 * @example
 * svg('circle', { cx: '4', cy: '4', r: '3' });
 */
export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el: Element, attrs: Record<string, string | boolean | undefined>): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : value);
  }
}

function append(el: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'number' ? String(child) : child);
  }
}

/** The element with `id`, checked to be a `kind`; a missing one is a bug in the page shell. */
export function byId<T extends HTMLElement>(id: string, kind: abstract new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof kind)) throw new Error(`the page has no #${id} of the expected kind`);
  return el;
}

/** Replaces the rows of a table body. */
export function setRows(table: HTMLTableElement, rows: readonly HTMLTableRowElement[]): void {
  const body = table.tBodies[0] ?? table.createTBody();
  body.replaceChildren(...rows);
}

/** `12:03:04` in local time; the full ISO time goes in a title/datetime. */
export function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** A `<time>` element showing the clock time, with the full time for assistive tech and hover. */
export function timeEl(iso: string): HTMLTimeElement {
  return h('time', { datetime: iso, title: iso }, clock(iso));
}
