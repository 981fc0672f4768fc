export function el<K extends keyof HTMLElementTagNameMap> (
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value)
  node.append(...children)
  return node
}

export function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  const node = document.getElementById(id)
  if (node === null) throw new Error(`index.html has no #${id}`)
  return node as T
}
