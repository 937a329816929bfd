// The segment builder: edits the rule tree (see segments/rules.py) held as JSON in the form's "rules"
// field, draws inputs that fit each field's type from the catalogue the server sends (fields, operators,
// value shapes, the environment's groups and offers), and asks the server for the member count and a
// sample as the rules change. The server checks the rules; its problems come back with JSON pointers and
// are shown, in plain words, on the line they point at: only once the user has changed that line or
// pressed Save (a line just added is not wrong yet, only unfinished).
(function () {
  "use strict";
  const root = document.getElementById("segment-builder");
  if (!root) return;
  const data = JSON.parse(document.getElementById("segment-builder-data").textContent);
  const input = document.getElementById(root.dataset.input);
  const treeBox = document.getElementById("segment-tree");
  const environmentSelect = document.getElementById("id_environment");
  const csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";

  // Show the builder above the raw JSON (which stays editable for those who prefer it).
  const jsonRow = input.closest("fieldset") || input.parentElement;
  if (jsonRow && jsonRow.parentElement) jsonRow.parentElement.insertBefore(root, jsonRow);

  let tree;
  try { tree = JSON.parse(input.value); } catch (e) { tree = null; }
  if (!tree || tree.type !== "group") tree = { type: "group", match: "all", negate: false, children: [] };

  const environment = () => (environmentSelect ? environmentSelect.value : data.environment) || "live";
  const catalogue = () => data.catalogues[environment()] || { fields: [], references: {} };
  const fieldOf = (key) => catalogue().fields.find((f) => f.key === key);
  const today = () => new Date().toISOString().slice(0, 10);

  function defaultValue(shape) {
    return {
      none: null, text: "", number: 0, count: 1, boolean: true, date: today(), days: 30,
      number_range: [0, 100], count_range: [1, 5], date_range: [today(), today()],
      month_days: ["01-01", "01-31"], ids: [],
    }[shape];
  }

  function operatorOf(field, key) { return field.operators.find((o) => o.key === key) || field.operators[0]; }

  function newCondition() {
    const field = fieldOf("profile.accepts_marketing") || catalogue().fields[0];
    const operator = field.operators[0];
    return { type: "condition", field: field.key, operator: operator.key, value: defaultValue(operator.value), params: {}, negate: false };
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function select(options, value, onchange, attrs) {
    const node = el("select", attrs || {});
    for (const option of options) {
      if (option.group) {
        const group = el("optgroup", { label: option.group });
        for (const o of option.options) group.append(el("option", { value: o.value }, o.label));
        node.append(group);
      } else node.append(el("option", { value: option.value }, option.label));
    }
    node.value = value;
    node.addEventListener("change", () => onchange(node.value, node));
    return node;
  }

  // --- value inputs, one per value shape ---------------------------------------------------------------
  function numberInput(value, onchange, attrs) {
    return el("input", {
      type: "number", value: value ?? "", ...attrs,
      oninput: (e) => onchange(e.target.value === "" ? null : Number(e.target.value)),
    });
  }
  function textInput(value, onchange, attrs) {
    return el("input", { type: "text", value: value ?? "", ...attrs, oninput: (e) => onchange(e.target.value) });
  }
  // Dates are typed and shown as YYYY-MM-DD whatever the browser's locale (a date input would show 05/17/2026).
  function dateInput(value, onchange, label) {
    return el("input", {
      type: "text", class: "sb-date", value: value || "", placeholder: "YYYY-MM-DD", inputmode: "numeric",
      maxlength: 10, "aria-label": label || "date", title: "A date as YYYY-MM-DD",
      oninput: (e) => onchange(e.target.value.trim() || null),
    });
  }
  function pair(value, make, onchange) {
    const current = Array.isArray(value) ? value.slice() : [null, null];
    return [
      make(current[0], (v) => { current[0] = v; onchange(current.slice()); }, "from"),
      el("span", {}, "and"),
      make(current[1], (v) => { current[1] = v; onchange(current.slice()); }, "to"),
    ];
  }
  // A searchable multi-select: the chosen ones as removable chips, a search box, and the matching names as
  // checkboxes. Names are what people know; ids never show.
  function idsInput(reference, value, onchange) {
    const ref = catalogue().references[reference] || { label: reference, options: [] };
    if (!ref.options.length) return el("span", { class: "sb-empty" }, `No ${ref.label} in this environment yet`);
    const chosen = new Set(value || []);
    const names = new Map(ref.options);
    const chips = el("span", { class: "sb-chips" });
    const list = el("div", { class: "sb-options", role: "group", "aria-label": ref.label });
    const search = el("input", { type: "search", class: "sb-search", placeholder: `Search ${ref.label}…`, "aria-label": `Search ${ref.label}` });
    const boxes = ref.options.map(([id, label]) => {
      const box = el("input", { type: "checkbox", value: id, checked: chosen.has(id) });
      box.addEventListener("change", () => { if (box.checked) chosen.add(id); else chosen.delete(id); update(); });
      return el("label", { class: "sb-option", dataset: { name: label.toLowerCase() } }, box, label);
    });
    list.append(...boxes);
    function drawChips() {
      chips.replaceChildren(...Array.from(chosen, (id) => el("span", { class: "sb-chip" }, names.get(id) || `#${id}`,
        el("button", { type: "button", "aria-label": `Remove ${names.get(id)}`, onclick: () => {
          chosen.delete(id);
          boxes.forEach((b) => { const box = b.querySelector("input"); if (Number(box.value) === id) box.checked = false; });
          update();
        } }, "×"))));
      if (!chosen.size) chips.append(el("span", { class: "sb-empty" }, `No ${ref.label} picked yet`));
    }
    function update() { drawChips(); onchange(Array.from(chosen)); }
    search.addEventListener("input", () => {
      const words = search.value.trim().toLowerCase();
      for (const b of boxes) b.hidden = !!words && !b.dataset.name.includes(words);
    });
    drawChips();
    return el("span", { class: "sb-picker" }, chips, search, list);
  }

  function valueInput(shape, reference, value, onchange) {
    switch (shape) {
      case "none": return null;
      case "text": return textInput(value, onchange, { "aria-label": "value", placeholder: "value" });
      case "number": return numberInput(value, onchange, { step: "any", "aria-label": "value" });
      case "count":
      case "days": return numberInput(value, onchange, { min: 0, step: 1, "aria-label": shape === "days" ? "days" : "value" });
      case "boolean": return select([{ value: "true", label: "yes" }, { value: "false", label: "no" }], String(value !== false), (v) => onchange(v === "true"), { "aria-label": "value" });
      case "date": return dateInput(value, onchange);
      case "date_range": return pair(value, (v, change, label) => dateInput(v, change, label), onchange);
      case "number_range":
      case "count_range": return pair(value, (v, change, label) => numberInput(v, change, { step: shape === "count_range" ? 1 : "any", "aria-label": label }), onchange);
      case "month_days": return pair(value, (v, change, label) => textInput(v, change, { class: "sb-md", placeholder: "MM-DD", "aria-label": label }), onchange);
      case "ids": return idsInput(reference, value, onchange);
      default: return textInput(value, onchange);
    }
  }

  function paramInput(param, params, pointer, node) {
    const set = (v) => {
      if (v === null || v === "" || (Array.isArray(v) && !v.length)) delete params[param.name];
      else params[param.name] = v;
      touched.add(node);
      changed(false);
    };
    let control;
    if (param.choices.length) {
      control = select([{ value: "", label: "any" }, ...param.choices.map(([value, label]) => ({ value, label }))], params[param.name] || "", set);
    } else if (param.value === "ids") {
      const ref = catalogue().references[param.reference] || { options: [] };
      control = select([{ value: "", label: "any" }, ...ref.options.map(([id, label]) => ({ value: String(id), label }))], params[param.name] ? String(params[param.name]) : "", (v) => set(v ? Number(v) : null));
    } else if (param.value === "date") {
      control = dateInput(params[param.name], set, param.label);
    } else if (param.value === "days") {
      control = numberInput(params[param.name], set, { min: 0, step: 1, placeholder: "days" });
    } else {
      control = textInput(params[param.name], set, { placeholder: param.help || param.label });
    }
    control.setAttribute("aria-label", param.label);
    return el("label", { dataset: { pointer: `${pointer}/params/${param.name}` }, title: param.help || "" }, param.label + (param.required ? " *" : ""), control);
  }

  // --- nodes -------------------------------------------------------------------------------------------
  function negateToggle(node) {
    const box = el("input", { type: "checkbox", checked: !!node.negate, onchange: (e) => { node.negate = e.target.checked; changed(true); } });
    return el("label", { class: "sb-not", title: "Match the customers this does not match" }, box, "not");
  }

  function conditionNode(node, pointer, remove) {
    const field = fieldOf(node.field);
    if (!field) {
      return el("div", { class: "sb-cond", dataset: { pointer } }, `Unknown field ${node.field}`, el("button", { type: "button", class: "sb-remove", onclick: remove }, "Remove"));
    }
    const categories = [];
    for (const f of catalogue().fields) {
      let group = categories.find((c) => c.group === f.category);
      if (!group) categories.push((group = { group: f.category, options: [] }));
      group.options.push({ value: f.key, label: f.label });
    }
    const fieldSelect = select(categories, node.field, (key) => {
      const next = fieldOf(key);
      const operator = next.operators[0];
      Object.assign(node, { field: key, operator: operator.key, value: defaultValue(operator.value), params: {} });
      touched.delete(node); // a new field starts unfinished, not wrong
      changed(true);
    }, { "aria-label": "field", class: "sb-field" });
    const operator = operatorOf(field, node.operator);
    const operatorSelect = select(field.operators.map((o) => ({ value: o.key, label: o.label })), operator.key, (key) => {
      const next = operatorOf(field, key);
      if (next.value !== operator.value) node.value = defaultValue(next.value);
      node.operator = key;
      touched.add(node);
      changed(true);
    }, { "aria-label": "operator", class: "sb-operator" });
    node.params = node.params || {};
    const value = valueInput(operator.value, field.reference, node.value, (v) => { node.value = v; touched.add(node); changed(false); });
    const params = field.params.length
      ? el("div", { class: "sb-params" }, field.params.map((p) => paramInput(p, node.params, pointer, node)))
      : null;
    nodes.set(pointer, node);
    return el("div", { class: "sb-cond" + (node.negate ? " sb-negated" : ""), dataset: { pointer },
      // Leaving a line the user worked on shows what is still missing on it.
      onfocusout: (e) => { if (!e.currentTarget.contains(e.relatedTarget) && editedLines.has(node)) { touched.add(node); showProblems(lastProblems); } },
      oninput: () => editedLines.add(node) },
      negateToggle(node), fieldSelect, operatorSelect,
      el("span", { class: "sb-value", dataset: { pointer: `${pointer}/value` } }, value),
      el("button", { type: "button", class: "sb-remove", onclick: remove, "aria-label": "Remove condition" }, "×"),
      params, field.help ? el("span", { class: "sb-empty" }, field.help) : null);
  }

  function groupNode(node, pointer, remove) {
    node.children = node.children || [];
    const children = node.children.map((child, i) => {
      const drop = () => { node.children.splice(i, 1); changed(true); };
      const path = `${pointer}/children/${i}`;
      return child.type === "group" ? groupNode(child, path, drop) : conditionNode(child, path, drop);
    });
    const head = el("div", { class: "sb-group-head" },
      negateToggle(node),
      select([{ value: "all", label: "All of" }, { value: "any", label: "Any of" }], node.match || "all", (v) => { node.match = v; changed(true); }, { "aria-label": "match", class: "sb-match" }),
      el("span", {}, node.match === "any" ? "these (OR)" : "these (AND)"),
      el("button", { type: "button", class: "sb-add-condition", onclick: () => { node.children.push(newCondition()); changed(true); } }, "+ Condition"),
      el("button", { type: "button", class: "sb-add-group", onclick: () => { node.children.push({ type: "group", match: "any", negate: false, children: [newCondition()] }); changed(true); } }, "+ Group"),
      remove ? el("button", { type: "button", class: "sb-remove", onclick: remove }, "Remove group") : null);
    const empty = node.children.length ? null : el("p", { class: "sb-empty" }, node.match === "any" ? "No lines: matches nobody." : "No lines: matches every customer.");
    nodes.set(pointer, node);
    return el("div", { class: "sb-group" + (node.match === "any" ? " sb-any" : "") + (node.negate ? " sb-negated" : ""), dataset: { pointer } },
      head, el("div", { class: "sb-children" }, children, empty));
  }

  // --- state, preview and problems ------------------------------------------------------------------------
  let timer = null;
  let asked = 0;
  const nodes = new Map(); // pointer -> node of the tree, as last drawn
  const touched = new WeakSet(); // lines the user changed: their problems show
  const editedLines = new WeakSet(); // lines the user typed in (shown when the user leaves them)
  let submitted = false; // after Save every problem shows
  let lastProblems = [];

  function render() {
    nodes.clear();
    treeBox.replaceChildren(groupNode(tree, "/rules", null));
  }

  // The server's words, said as a person would, for the line's own value or setting.
  function plain(problem, node) {
    let text = problem.details || "";
    const field = node && node.type === "condition" ? fieldOf(node.field) : null;
    const ref = field && field.reference ? (catalogue().references[field.reference] || {}).label : "";
    if (/non-empty list of ids/.test(text)) text = `pick at least one ${ref || "item"}`;
    else if (/^no (.+) with id \d+/.test(text)) text = text.replace(/^no (.+) with id \d+ in \w+/, "a $1 picked here no longer exists: pick another one");
    else if (/must be a date such as/.test(text)) text = "type a date as YYYY-MM-DD, e.g. 2026-05-17";
    else if (/must be a non-empty string/.test(text)) text = "type a value";
    else if (/must be a number/.test(text)) text = "type a number";
    else if (/days of the year such as/.test(text)) text = "type days of the year as MM-DD, e.g. 05-17";
    text = text.replace(/, not nothing$/, "").replace(/ \(not .*\)$/, "");
    return text.charAt(0).toUpperCase() + text.slice(1) + (text.endsWith(".") ? "" : ".");
  }

  function lineOf(pointer) {
    // The deepest drawn line the pointer is inside: a condition, else its group.
    let at = pointer || "/rules";
    while (at && !nodes.has(at)) at = at.slice(0, at.lastIndexOf("/"));
    return at || "/rules";
  }

  function changed(structural) {
    input.value = JSON.stringify(tree);
    if (structural) render();
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }

  function showProblems(problems) {
    lastProblems = problems || [];
    root.querySelectorAll(".sb-error").forEach((n) => n.remove());
    root.querySelectorAll(".sb-has-error").forEach((n) => n.classList.remove("sb-has-error"));
    let hidden = 0;
    for (const problem of lastProblems) {
      const pointer = lineOf(problem.pointer);
      const node = nodes.get(pointer);
      if (!submitted && !(node && touched.has(node))) { hidden += 1; continue; }
      const target = root.querySelector(`[data-pointer="${CSS.escape(pointer)}"]`);
      const at = (target && target.closest(".sb-cond, .sb-group")) || treeBox;
      at.classList.add("sb-has-error");
      at.append(el("div", { class: "sb-error", role: "alert" }, plain(problem, node)));
    }
    return hidden;
  }

  async function preview() {
    const mine = ++asked;
    window.patronage.setText("segment-status", "Counting…");
    try {
      const response = await fetch(root.dataset.previewUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
        body: JSON.stringify({ environment: environment(), rules: tree }),
      });
      const body = await response.json();
      if (mine !== asked) return; // a later change asked again
      if (!response.ok) {
        window.patronage.setText("segment-count", "–");
        const shown = (body.problems || []).length - showProblems(body.problems);
        window.patronage.setText("segment-status", shown
          ? "Counted once the lines marked in red are complete."
          : "Counted once every line is complete.");
        fillSample([]);
        return;
      }
      showProblems([]);
      window.patronage.setText("segment-count", window.patronage.number(body.count));
      window.patronage.setText("segment-count-label", body.count === 1 ? "customer matches" : "customers match");
      window.patronage.setText("segment-status", body.sample.length ? `The ${body.sample.length} latest of them:` : "");
      fillSample(body.sample);
    } catch (error) {
      if (mine === asked) window.patronage.setText("segment-status", "Could not reach the server; retrying on the next change.");
    }
  }

  function fillSample(rows) {
    const body = document.querySelector("#segment-sample tbody");
    body.replaceChildren(...rows.map((row) => el("tr", {},
      el("td", {}, el("a", { href: row.url }, row.integration_id)), el("td", {}, row.name || ""), el("td", {}, row.email || ""))));
  }

  if (environmentSelect) environmentSelect.addEventListener("change", () => changed(true));
  // Save shows every problem, on its line (the page comes back with them when the server refused it).
  const form = input.form;
  if (form) form.addEventListener("submit", () => { submitted = true; });
  submitted = (data.problems || []).length > 0;
  render();
  showProblems(data.problems);
  changed(false);
})();
