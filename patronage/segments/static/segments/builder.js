// The segment builder: edits the rule tree (see segments/rules.py) held as JSON in the form's "rules"
// field, draws inputs that fit each field's type from the catalogue the server sends (fields, operators,
// value shapes, the environment's groups and offers), and asks the server for the member count and a
// sample as the rules change. The server checks the rules; its problems come back with JSON pointers and
// are shown on the line they point at.
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
  function dateInput(value, onchange, label) {
    return el("input", { type: "date", value: value || "", "aria-label": label || "date", oninput: (e) => onchange(e.target.value || null) });
  }
  function pair(value, make, onchange) {
    const current = Array.isArray(value) ? value.slice() : [null, null];
    return [
      make(current[0], (v) => { current[0] = v; onchange(current.slice()); }, "from"),
      el("span", {}, "and"),
      make(current[1], (v) => { current[1] = v; onchange(current.slice()); }, "to"),
    ];
  }
  function idsInput(reference, value, onchange) {
    const ref = catalogue().references[reference] || { label: reference, options: [] };
    if (!ref.options.length) return el("span", { class: "sb-empty" }, `No ${ref.label} in this environment yet`);
    const node = el("select", { multiple: true, size: Math.max(2, Math.min(5, ref.options.length)), "aria-label": ref.label });
    for (const [id, label] of ref.options) {
      node.append(el("option", { value: id, selected: (value || []).includes(id) }, label));
    }
    node.addEventListener("change", () => onchange(Array.from(node.selectedOptions, (o) => Number(o.value))));
    return node;
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

  function paramInput(param, params, pointer) {
    const set = (v) => {
      if (v === null || v === "" || (Array.isArray(v) && !v.length)) delete params[param.name];
      else params[param.name] = v;
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
      changed(true);
    }, { "aria-label": "field", class: "sb-field" });
    const operator = operatorOf(field, node.operator);
    const operatorSelect = select(field.operators.map((o) => ({ value: o.key, label: o.label })), operator.key, (key) => {
      const next = operatorOf(field, key);
      if (next.value !== operator.value) node.value = defaultValue(next.value);
      node.operator = key;
      changed(true);
    }, { "aria-label": "operator", class: "sb-operator" });
    node.params = node.params || {};
    const value = valueInput(operator.value, field.reference, node.value, (v) => { node.value = v; changed(false); });
    const params = field.params.length
      ? el("div", { class: "sb-params" }, field.params.map((p) => paramInput(p, node.params, pointer)))
      : null;
    return el("div", { class: "sb-cond" + (node.negate ? " sb-negated" : ""), dataset: { pointer } },
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
    return el("div", { class: "sb-group" + (node.match === "any" ? " sb-any" : "") + (node.negate ? " sb-negated" : ""), dataset: { pointer } },
      head, el("div", { class: "sb-children" }, children, empty));
  }

  // --- state, preview and problems ------------------------------------------------------------------------
  let timer = null;
  let asked = 0;

  function render() {
    treeBox.replaceChildren(groupNode(tree, "/rules", null));
  }

  function changed(structural) {
    input.value = JSON.stringify(tree);
    if (structural) render();
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }

  function showProblems(problems) {
    root.querySelectorAll(".sb-error").forEach((n) => n.remove());
    root.querySelectorAll(".sb-has-error").forEach((n) => n.classList.remove("sb-has-error"));
    for (const problem of problems || []) {
      let pointer = problem.pointer || "/rules";
      let target = null;
      while (!target && pointer) {
        target = root.querySelector(`[data-pointer="${CSS.escape(pointer)}"]`);
        pointer = pointer.slice(0, pointer.lastIndexOf("/"));
      }
      const at = (target && target.closest(".sb-cond, .sb-group")) || treeBox;
      at.classList.add("sb-has-error");
      at.append(el("div", { class: "sb-error", role: "alert" }, problem.details));
    }
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
        window.patronage.setText("segment-status", body.message || "The rules cannot be counted");
        showProblems(body.problems);
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
  render();
  showProblems(data.problems);
  changed(false);
})();
