// The campaign page's editors: budget rows over the "limits" JSON and a rule builder over the Talang JSON
// of the "rules" field (which stays editable as the "Talang" view). Pickers come from the engine's
// catalogue (registry.catalogue()); the builder only edits the parts it recognises and keeps everything
// else as it is, so the JSON round-trips. The server is the validator: its problems come back on save with
// a JSON pointer and words ("Rule 1, condition 2: ..."), and are drawn on the rule, condition or effect.
(function () {
  "use strict";
  const dataNode = document.getElementById("campaign-builder-data");
  if (!dataNode) return;
  const data = JSON.parse(dataNode.textContent);
  const cat = data.catalogue;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "value") node.value = value;
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child);
    return node;
  }
  function select(options, value, onchange, attrs) {
    const node = el("select", attrs || {});
    for (const o of options) {
      if (o.group) node.append(el("optgroup", { label: o.group }, o.options.map((x) => el("option", { value: x.value }, x.label))));
      else node.append(el("option", { value: o.value }, o.label));
    }
    node.value = value;
    node.addEventListener("change", () => onchange(node.value));
    return node;
  }
  function parse(text) { try { return JSON.parse(text); } catch (e) { return undefined; } }
  const clone = (v) => JSON.parse(JSON.stringify(v));

  // ---- budgets -------------------------------------------------------------------------------------------
  const budgetsBox = document.getElementById("campaign-budgets");
  const limitsInput = document.getElementById("id_limits");
  if (budgetsBox && limitsInput) {
    let limits = parse(limitsInput.value);
    if (Array.isArray(limits)) {
      limitsInput.parentElement.insertBefore(budgetsBox, limitsInput);
      budgetsBox.hidden = false;
      limitsInput.classList.add("cb-json-behind");
      const periods = [{ value: "", label: "never resets" }, ...data.periods.map((p) => ({ value: p, label: `resets ${p}` }))];
      const actions = Object.entries(cat.budgetActions).map(([value, label]) => ({ value, label }));
      const write = () => { limitsInput.value = JSON.stringify(limits); };
      const drawBudgets = () => {
        const rows = limits.map((limit, i) => el("div", { class: "cb-row cb-budget", dataset: { pointer: `/limits/${i}` } },
          select(actions, limit.action, (v) => { limit.action = v; write(); }, { "aria-label": `Budget ${i + 1}: what it counts` }),
          el("span", {}, "at most"),
          el("input", { type: "number", min: 0, step: "any", value: limit.limit ?? "", "aria-label": `Budget ${i + 1}: limit`,
            oninput: (e) => { limit.limit = e.target.value === "" ? "" : Number(e.target.value); write(); } }),
          el("span", { class: "cb-entities" }, el("span", {}, "per"),
            ...cat.entities.map((name) => el("label", {}, el("input", { type: "checkbox", checked: (limit.entities || []).includes(name),
              onchange: (e) => {
                const set = new Set(limit.entities || []);
                if (e.target.checked) set.add(name); else set.delete(name);
                limit.entities = Array.from(set); write();
              } }), name)),
            (limit.entities || []).length ? null : el("em", {}, "(the whole campaign)")),
          select(periods, limit.period || "", (v) => { if (v) limit.period = v; else delete limit.period; write(); }, { "aria-label": `Budget ${i + 1}: period` }),
          el("button", { type: "button", class: "cb-remove", "aria-label": `Remove budget ${i + 1}`, onclick: () => { limits.splice(i, 1); write(); drawBudgets(); } }, "×")));
        budgetsBox.replaceChildren(...rows,
          limits.length ? null : el("p", { class: "cb-empty" }, "No budget: the campaign gives without limit."),
          el("button", { type: "button", class: "cb-add", onclick: () => { limits.push({ action: "setDiscount", limit: 1000, entities: [] }); write(); drawBudgets(); } }, "+ Budget"));
      };
      limitsInput.addEventListener("change", () => { const v = parse(limitsInput.value); if (Array.isArray(v)) { limits = v; drawBudgets(); } });
      drawBudgets();
    }
  }

  // ---- rules ---------------------------------------------------------------------------------------------
  const root = document.getElementById("campaign-builder");
  const input = document.getElementById("id_rules");
  if (!root || !input) return;
  const box = document.getElementById("campaign-rules");
  const status = document.getElementById("campaign-rules-status");
  input.parentElement.insertBefore(root, input);
  root.hidden = false;

  const COMPARE = { "=": "is", "!=": "is not", "<": "is less than", "<=": "is at most", ">": "is more than", ">=": "is at least",
    contains: "contains", startsWith: "starts with", endsWith: "ends with", in: "includes" };
  const OPERATORS = {
    number: ["=", "!=", "<", "<=", ">", ">="],
    string: ["=", "!=", "contains", "startsWith", "endsWith", "<", "<=", ">", ">="],
    boolean: ["=", "!="],
    any: ["=", "!=", "<", "<=", ">", ">=", "contains", "startsWith", "endsWith"],
    list: ["in"],
  };
  const SCOPES = [{ value: "", label: "application default" }, { value: "sessionTotal", label: "session total" },
    { value: "cartItems", label: "cart items" }, { value: "additionalCosts", label: "additional costs" }];
  const attributes = cat.attributes;
  const attrOf = (root_, name) => attributes.find((a) => a.path[0] === root_ && a.path[1] === name);
  const functions = cat.functions.filter((f) => f.result === "boolean");
  const fnOf = (name) => functions.find((f) => f.name === name);
  const effectOf = (name) => cat.effects.find((e) => e.name === name);
  const isLiteral = (v) => v === null || ["number", "string", "boolean"].includes(typeof v);
  const isAttr = (v) => Array.isArray(v) && v[0] === "." && v.length >= 3 && v.length <= 4 && v.every((p) => typeof p === "string");

  let rules = parse(input.value);
  const expressions = new Set(); // arguments shown as Talang although they hold a plain value
  let problems = data.problems || [];

  function attributeOptions(rootName) {
    const roots = rootName ? [rootName] : [...new Set(attributes.map((a) => a.path[0]))].filter((r) => r !== "Item");
    return roots.map((r) => ({ group: r, options: attributes.filter((a) => a.path[0] === r && a.type !== "items")
      .map((a) => ({ value: a.path.join("."), label: a.label + (a.nested ? " …" : "") })) }));
  }

  // What a condition is, for the builder: "always", "attr", "item", "fn", or "talang" (kept as JSON).
  function kindOf(node) {
    if (node === true) return "always";
    if (!Array.isArray(node)) return "talang";
    if (node[0] === "in" && node.length === 3 && isLiteral(node[1]) && isAttr(node[2]) && attrOf(node[2][1], node[2][2])) return "attr";
    if (OPERATORS.any.includes(node[0]) && node.length === 3 && isAttr(node[1]) && isLiteral(node[2]) && attrOf(node[1][1], node[1][2])) return "attr";
    if (node[0] === "exists" && node.length === 4 && JSON.stringify(node[1]) === '[".","Session","CartItems"]'
      && JSON.stringify(node[2]) === '["Item"]' && Array.isArray(node[3]) && kindOf(node[3]) === "attr" && node[3][1][1] === "Item") return "item";
    if (fnOf(node[0]) && node.length - 1 === fnOf(node[0]).args.length && node.slice(1).every(isLiteral)) return "fn";
    return "talang";
  }
  function newCondition(kind) {
    if (kind === "always") return true;
    if (kind === "item") return ["exists", [".", "Session", "CartItems"], ["Item"], ["=", [".", "Item", "Category"], ""]];
    if (kind === "fn") { const f = functions[0]; return [f.name, ...f.args.map((t) => (t === "number" ? 0 : ""))]; }
    if (kind === "talang") return ["and", true];
    return [">=", [".", "Session", "CartItemTotal"], 50];
  }
  function defaultFor(type) { return type === "number" ? 0 : type === "boolean" ? true : ""; }

  function valueInput(type, value, set, label) {
    if (type === "boolean") return select([{ value: "true", label: "yes" }, { value: "false", label: "no" }], String(value !== false), (v) => set(v === "true"), { "aria-label": label });
    if (type === "number") return el("input", { type: "number", step: "any", value: value ?? "", "aria-label": label, oninput: (e) => set(e.target.value === "" ? 0 : Number(e.target.value)) });
    return el("input", { type: "text", value: value ?? "", "aria-label": label, placeholder: "value",
      oninput: (e) => { const t = e.target.value; set(type === "any" && /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t); } });
  }
  // An expression argument: JSON typed in a text box; kept only when it parses.
  function jsonInput(value, set, label, wide) {
    const node = el("input", { type: "text", class: "cb-json" + (wide ? " cb-wide" : ""), value: value === undefined ? "" : JSON.stringify(value), "aria-label": label, spellcheck: "false",
      oninput: (e) => {
        const text = e.target.value.trim();
        const v = text === "" ? undefined : parse(text);
        const bad = text !== "" && v === undefined;
        node.classList.toggle("cb-invalid", bad);
        node.title = bad ? "Not valid JSON yet" : "";
        if (!bad) set(v, false);
      } });
    return node;
  }

  // A comparison of an attribute: [op, [".", root, name, sub?], value] (or ["in", value, list]).
  function attrEditor(node, replace, itemOnly) {
    const isIn = node[0] === "in";
    const path = isIn ? node[2] : node[1];
    const attr = attrOf(path[1], path[2]);
    const type = attr.type === "list" ? "list" : attr.type;
    const value = isIn ? node[1] : node[2];
    const pick = select(attributeOptions(itemOnly ? "Item" : null), `${path[1]}.${path[2]}`, (v) => {
      const [r, n] = v.split(".");
      const a = attrOf(r, n);
      const p = a.nested ? [".", r, n, ""] : [".", r, n];
      replace(a.type === "list" ? ["in", "", p] : [OPERATORS[a.type][0], p, defaultFor(a.type)], true);
    }, { "aria-label": "attribute", class: "cb-attribute" });
    const sub = attr.nested ? el("input", { type: "text", value: path[3] || "", placeholder: "name", "aria-label": "attribute name",
      oninput: (e) => { const p = path.slice(0, 3).concat([e.target.value]); replace(isIn ? ["in", value, p] : [node[0], p, value], false); } }) : null;
    const op = select(OPERATORS[type].map((o) => ({ value: o, label: COMPARE[o] })), node[0], (o) => replace([o, path, value], true), { "aria-label": "operator", class: "cb-operator" });
    const val = valueInput(type === "list" ? "string" : type, value, (v) => replace(isIn ? ["in", v, path] : [node[0], path, v], false), "value");
    return [pick, sub, op, val];
  }

  function conditionRow(node, pointer, replace, remove) {
    const kind = kindOf(node);
    const kinds = [{ value: "attr", label: "Attribute" }, { value: "item", label: "Cart has an item whose" },
      { value: "fn", label: "Customer / function" }, { value: "always", label: "Always" }, { value: "talang", label: "Talang" }];
    const kindSelect = select(kinds, kind, (k) => replace(newCondition(k), true), { "aria-label": "condition kind", class: "cb-kind" });
    let body;
    if (kind === "attr") body = attrEditor(node, replace, false);
    else if (kind === "item") body = attrEditor(node[3], (inner, structural) => replace(["exists", node[1], node[2], inner], structural), true);
    else if (kind === "fn") {
      const f = fnOf(node[0]);
      body = [select(functions.map((x) => ({ value: x.name, label: x.label || x.name })), f.name, (name) => {
        const g = fnOf(name); replace([g.name, ...g.args.map(defaultFor)], true);
      }, { "aria-label": "function", class: "cb-function", title: f.help }),
      ...f.args.map((t, i) => valueInput(t, node[i + 1], (v) => { const next = node.slice(); next[i + 1] = v; replace(next, false); }, `argument ${i + 1}`)),
      f.help ? el("span", { class: "cb-hint" }, f.help) : null];
    } else if (kind === "always") body = [el("span", { class: "cb-hint" }, "holds for every session")];
    else body = [jsonInput(node, (v) => replace(v, false), "condition as Talang", true)];
    return el("div", { class: "cb-row cb-condition", dataset: { pointer } }, kindSelect, body,
      remove ? el("button", { type: "button", class: "cb-remove", "aria-label": "Remove condition", onclick: remove }, "×") : null);
  }

  function effectRow(node, pointer, replace, remove, failure) {
    const spec = Array.isArray(node) ? effectOf(node[0]) : null;
    const choices = cat.effects.filter((e) => !failure || e.failure).map((e) => ({ value: e.name, label: e.label || e.name }));
    choices.push({ value: "", label: "Talang" });
    const pick = select(choices, spec ? spec.name : "", (name) => {
      const e = effectOf(name);
      if (!e) { replace(["noop"], true); return; }
      replace([e.name, ...e.args.slice(0, e.args.length - e.optional).map((t, i) => defaultArg(e, i, t))], true);
    }, { "aria-label": "effect", class: "cb-effect" });
    let body;
    if (!spec) body = [jsonInput(node, (v) => replace(v, false), "effect as Talang", true)];
    else {
      body = spec.args.map((type, i) => {
        const value = node[i + 1];
        const label = `${spec.label || spec.name}: argument ${i + 1}`;
        const set = (v) => {
          const next = node.slice();
          if (v === undefined || (v === "" && i >= spec.args.length - spec.optional)) next.length = Math.min(next.length, i + 1);
          else { while (next.length < i + 1) next.push(null); next[i + 1] = v; }
          while (next.length > 1 + spec.args.length - spec.optional && (next[next.length - 1] === undefined || next[next.length - 1] === null)) next.pop();
          replace(next, false);
        };
        const here = `${pointer}/${i + 1}`;
        const literal = (type === "number" && typeof value === "number") || (["string", "name"].includes(type) && typeof value === "string")
          || (value === undefined && type !== "any" && type !== "items");
        let control;
        if (spec.name === "setDiscount" && i === 2) control = select(SCOPES, value || "", (v) => set(v || undefined), { "aria-label": label });
        else if (type === "item") control = el("span", { class: "cb-hint" }, "for each item, as", jsonInput(value, set, label));
        else if (literal && !expressions.has(here)) control = valueInput(type === "name" ? "string" : type, value, set, label);
        else control = jsonInput(value, set, label, type === "items" || Array.isArray(value));
        // A number or a text may also be an expression (e.g. 10% of the cart): the same value as Talang.
        const toggle = (type === "number" || type === "string") && !(spec.name === "setDiscount" && i === 2)
          ? el("button", { type: "button", class: "cb-fx", title: "A fixed value, or an expression in Talang", "aria-label": `${label}: value or expression`,
            onclick: () => {
              if (literal && !expressions.has(here)) expressions.add(here);
              else { expressions.delete(here); if (!literal) { set(defaultFor(type)); render(); return; } }
              render();
            } }, "ƒx") : null;
        return el("span", { class: "cb-arg", dataset: { pointer: here } }, control, toggle);
      });
      if (spec.help) body.push(el("span", { class: "cb-hint cb-wide" }, spec.help));
    }
    return el("div", { class: "cb-row cb-effect-row", dataset: { pointer } }, pick, body,
      el("button", { type: "button", class: "cb-remove", "aria-label": "Remove effect", onclick: remove }, "×"));
  }
  function defaultArg(effect, i, type) {
    if (effect.name === "setDiscountPerItem") return [effect.name, [".", "Session", "CartItems"], ["Item"], ["*", [".", "Item", "Total"], ["/", 10, 100]]][i];
    if (effect.name === "setDiscountPerAdditionalCost" && i === 1) return "shipping";
    if (effect.name === "updateAttributeValue" && i === 0) return "Profile";
    if (type === "string" || type === "name") return i === 0 ? effect.label || effect.name : "";
    if (type === "any") return {};
    return defaultFor(type);
  }

  function ruleCard(rule, i) {
    const pointer = `/rules/${i}`;
    const cond = rule.condition;
    const joined = Array.isArray(cond) && cond[0] === "and";
    const conditions = joined
      ? cond.slice(1).map((c, k) => conditionRow(c, `${pointer}/condition/${k + 1}`,
        (v, structural) => { cond[k + 1] = v; changed(structural); },
        () => { cond.splice(k + 1, 1); if (cond.length === 1) cond.push(true); changed(true); }))
      : [conditionRow(cond, `${pointer}/condition`, (v, structural) => { rule.condition = v; changed(structural); }, null)];
    const addCondition = el("button", { type: "button", class: "cb-add", onclick: () => {
      if (joined) { if (cond.length === 2 && cond[1] === true) cond.pop(); cond.push(newCondition("attr")); } else rule.condition = ["and", cond, newCondition("attr")];
      changed(true);
    } }, "+ Condition");
    const effectList = (key, failure) => (rule[key] || []).map((e, k) => effectRow(e, `${pointer}/${key}/${k}`,
      (v, structural) => { rule[key][k] = v; changed(structural); },
      () => { rule[key].splice(k, 1); if (failure && !rule[key].length) delete rule[key]; changed(true); }, failure));
    const addEffect = (key) => el("button", { type: "button", class: "cb-add", onclick: () => {
      rule[key] = rule[key] || [];
      rule[key].push(key === "effects" ? ["setDiscount", "Discount", 10] : ["showNotification", "Info", "", ""]);
      changed(true);
    } }, key === "effects" ? "+ Effect" : "+ Effect when the rule fails");
    const move = (to) => { const [r] = rules.splice(i, 1); rules.splice(to, 0, r); changed(true); };
    return el("article", { class: "cb-rule", dataset: { pointer } },
      el("header", { class: "cb-rule-head" },
        el("span", { class: "cb-rule-number" }, `Rule ${i + 1}`),
        el("input", { type: "text", class: "cb-title", value: rule.title || "", placeholder: "Rule title", "aria-label": `Rule ${i + 1} title`, dataset: { pointer: `${pointer}/title` },
          oninput: (e) => { rule.title = e.target.value; changed(false); } }),
        el("button", { type: "button", class: "cb-move", "aria-label": `Move rule ${i + 1} up`, disabled: i === 0, onclick: () => move(i - 1) }, "↑"),
        el("button", { type: "button", class: "cb-move", "aria-label": `Move rule ${i + 1} down`, disabled: i === rules.length - 1, onclick: () => move(i + 1) }, "↓"),
        el("button", { type: "button", class: "cb-remove", onclick: () => { rules.splice(i, 1); changed(true); } }, "Remove rule")),
      el("div", { class: "cb-section", dataset: { pointer: `${pointer}/condition` } }, el("h4", {}, "When all of these hold"), conditions, addCondition),
      el("div", { class: "cb-section", dataset: { pointer: `${pointer}/effects` } }, el("h4", {}, "Then"), effectList("effects", false), addEffect("effects")),
      el("div", { class: "cb-section cb-failure", dataset: { pointer: `${pointer}/failureEffects` } },
        rule.failureEffects ? el("h4", {}, "Otherwise") : null, effectList("failureEffects", true), addEffect("failureEffects")));
  }

  function render() {
    if (!Array.isArray(rules)) {
      box.replaceChildren(el("p", { class: "cb-empty" }, "The Talang below is not a list of rules the builder can show; edit it there."));
      return;
    }
    box.replaceChildren(...rules.map(ruleCard),
      ...(rules.length ? [] : [el("p", { class: "cb-empty" }, "No rules yet: the campaign gives nothing.")]),
      el("button", { type: "button", class: "cb-add cb-add-rule", onclick: () => {
        rules.push({ title: `Rule ${rules.length + 1}`, condition: ["and", newCondition("attr")], effects: [["setDiscount", "Discount", 10]] });
        changed(true);
      } }, "+ Rule"));
    showProblems();
  }

  // The server's problems, each on the deepest part of the page its pointer is inside.
  function showProblems() {
    for (const problem of problems) {
      let at = problem.pointer;
      let target = null;
      while (at && !(target = box.querySelector(`[data-pointer="${CSS.escape(at)}"]`))) at = at.slice(0, at.lastIndexOf("/"));
      const row = target ? target.closest(".cb-row, .cb-rule") || target : box;
      row.classList.add("cb-has-error");
      const message = el("div", { class: "cb-error", role: "alert" }, problem.message);
      if (target && target.classList.contains("cb-section")) target.insertBefore(message, target.children[1] || null);
      else row.append(message);
    }
  }

  function changed(structural) {
    input.value = JSON.stringify(rules, null, 2);
    if (structural) { problems = []; render(); }
  }

  // Builder / Talang views of the same rules.
  const tabs = root.querySelectorAll(".cb-tab");
  function show(view) {
    if (view === "builder") {
      const parsed = parse(input.value);
      if (parsed === undefined) { status.textContent = "The Talang is not valid JSON: fix it before going back to the builder."; return; }
      status.textContent = "";
      if (JSON.stringify(parsed) !== JSON.stringify(rules)) { rules = parsed; render(); }
    }
    tabs.forEach((t) => t.setAttribute("aria-selected", String(t.dataset.view === view)));
    box.hidden = view !== "builder";
    input.classList.toggle("cb-json-behind", view === "builder");
  }
  tabs.forEach((t) => t.addEventListener("click", () => show(t.dataset.view)));
  if (Array.isArray(rules)) { rules = clone(rules); render(); show("builder"); } else show("talang");
})();
