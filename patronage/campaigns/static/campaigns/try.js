// Try it: the cart as rows (SKU, name, category, price, quantity) over the JSON cartItems array of the
// form's "cart" field. A pasted array shows as rows too; the JSON stays editable for anything else.
(function () {
  "use strict";
  const box = document.getElementById("try-cart-rows");
  if (!box) return;
  const input = document.getElementById(box.dataset.input);
  let items;
  try { items = JSON.parse(input.value || "[]"); } catch (e) { items = null; }
  if (!Array.isArray(items)) return;
  box.hidden = false;
  const columns = [["sku", "SKU", "text"], ["name", "Name", "text"], ["category", "Category", "text"],
    ["price", `Price (${box.dataset.currency})`, "number"], ["quantity", "Quantity", "number"]];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "value") node.value = value;
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
    return node;
  }
  const write = () => { input.value = JSON.stringify(items); };

  function draw() {
    const rows = items.map((item, i) => el("tr", { class: "try-row" },
      columns.map(([key, label, type]) => el("td", {}, el("input", {
        type, value: item[key] ?? "", "aria-label": `Item ${i + 1}: ${label}`, step: type === "number" ? (key === "quantity" ? "1" : "any") : null,
        min: type === "number" ? (key === "quantity" ? "1" : "0") : null,
        oninput: (e) => { item[key] = type === "number" ? (e.target.value === "" ? "" : Number(e.target.value)) : e.target.value; write(); },
      }))),
      el("td", {}, el("button", { type: "button", class: "cb-remove", "aria-label": `Remove item ${i + 1}`, onclick: () => { items.splice(i, 1); write(); draw(); } }, "×"))));
    box.replaceChildren(
      el("table", { class: "try-cart" },
        el("thead", {}, el("tr", {}, columns.map(([, label]) => el("th", {}, label)), el("th", {}, ""))),
        el("tbody", {}, rows)),
      el("button", { type: "button", class: "cb-add", id: "try-add-item", onclick: () => { items.push({ sku: "", name: "", category: "", price: 0, quantity: 1 }); write(); draw(); } }, "+ Item"));
  }
  input.addEventListener("change", () => {
    let pasted;
    try { pasted = JSON.parse(input.value || "[]"); } catch (e) { return; }
    if (Array.isArray(pasted)) { items = pasted; draw(); }
  });
  if (!items.length) { items.push({ sku: "", name: "", category: "", price: 0, quantity: 1 }); write(); }
  draw();
})();
