// Small DOM helpers shared by the pages.
export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function safeId(prefix, id) {
  return `${prefix}-${String(id).replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

// Mark a card changed for a moment (a visible hint that a figure moved).
export function flash(node) {
  node.classList.add("changed");
  setTimeout(() => node.classList.remove("changed"), 1200);
}

// Put `nodes` into `parent` in this order, moving only what is out of place (keeps focus and scroll).
export function placeInOrder(parent, nodes) {
  nodes.forEach((node, i) => {
    if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
}
