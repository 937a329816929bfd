/* Custom attributes as a table: name, type (text, number, true/false, date, JSON) and value.
 *
 * The form posts the textarea's JSON object; this script draws a table over it and writes the table back
 * into it on every change, so what is saved is exactly what the table shows. Values keep their exact text
 * (a number such as 12345678901234567890 is never rounded through a JavaScript number). "Edit as JSON"
 * shows the textarea itself (the advanced view). Without JavaScript the textarea is the editor.
 */
(function () {
    "use strict";

    var TYPES = [
        ["text", "Text"],
        ["number", "Number"],
        ["boolean", "True/false"],
        ["date", "Date"],
        ["json", "JSON (list or object)"],
    ];
    var NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
    var DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

    // --- reading the JSON object with each value's exact source text -----------------------------------
    function skipSpace(text, i) {
        while (i < text.length && " \t\n\r".indexOf(text[i]) >= 0) i++;
        return i;
    }

    function endOfString(text, i) {
        // text[i] is the opening quote; returns the index after the closing one.
        for (i++; i < text.length; i++) {
            if (text[i] === "\\") i++;
            else if (text[i] === '"') return i + 1;
        }
        throw new Error("unterminated string");
    }

    function endOfValue(text, i) {
        var depth = 0;
        for (; i < text.length; i++) {
            var c = text[i];
            if (c === '"') {
                i = endOfString(text, i) - 1;
                if (depth === 0) return i + 1;
            } else if (c === "{" || c === "[") depth++;
            else if (c === "}" || c === "]") {
                if (depth === 0) return i;
                depth--;
                if (depth === 0) return i + 1;
            } else if (depth === 0 && (c === "," || " \t\n\r".indexOf(c) >= 0)) return i;
        }
        return i;
    }

    /** [[name, sourceText], ...] of a JSON object's members, or null when the text is not an object. */
    function members(text) {
        try {
            var parsed = JSON.parse(text);
            if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return null;
        } catch (error) {
            return null;
        }
        var out = [];
        var i = skipSpace(text, 0) + 1;
        while (true) {
            i = skipSpace(text, i);
            if (text[i] === "}") return out;
            var keyEnd = endOfString(text, i);
            var name = JSON.parse(text.slice(i, keyEnd));
            i = skipSpace(text, keyEnd) + 1; // the colon
            i = skipSpace(text, i);
            var valueEnd = endOfValue(text, i);
            out.push([name, text.slice(i, valueEnd)]);
            i = skipSpace(text, valueEnd);
            if (text[i] === ",") i++;
        }
    }

    function isDate(text) {
        if (!DATE.test(text)) return false;
        var day = new Date(text + "T00:00:00Z");
        return !isNaN(day) && day.toISOString().slice(0, 10) === text;
    }

    function typed(source) {
        var value = JSON.parse(source);
        if (typeof value === "string") return isDate(value) ? ["date", value] : ["text", value];
        if (typeof value === "number") return ["number", source];
        if (typeof value === "boolean") return ["boolean", String(value)];
        return ["json", source];
    }

    // --- the table ----------------------------------------------------------------------------------------
    function element(tag, attrs, children) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (key) {
            if (key === "text") node.textContent = attrs[key];
            else node.setAttribute(key, attrs[key]);
        });
        (children || []).forEach(function (child) {
            node.appendChild(child);
        });
        return node;
    }

    function setUp(editor) {
        var textarea = editor.querySelector("textarea");
        var inputClass = editor.dataset.inputClass;
        var selectClass = editor.dataset.selectClass;
        var rows = element("tbody");
        var table = element("table", { class: "attributes-table w-full text-sm" }, [
            element("thead", {}, [
                element("tr", { class: "text-left" }, [
                    element("th", { class: "font-semibold pb-1 pr-2", text: "Name" }),
                    element("th", { class: "font-semibold pb-1 pr-2", text: "Type" }),
                    element("th", { class: "font-semibold pb-1 pr-2", text: "Value" }),
                    element("th", {}),
                ]),
            ]),
            rows,
        ]);
        var empty = element("p", { class: "attributes-empty text-sm", text: "No custom attributes yet." });
        var add = element("button", { type: "button", class: "attributes-add text-primary-600 text-sm font-medium", text: "+ Add an attribute" });
        var toggle = element("button", { type: "button", class: "attributes-toggle text-primary-600 text-sm font-medium", text: "Edit as JSON" });
        var note = element("p", { class: "attributes-note text-sm text-red-600", role: "alert" });
        var tableView = element("div", { class: "attributes-table-view flex flex-col gap-2" }, [table, empty]);
        var actions = element("div", { class: "flex flex-row gap-4" }, [add, toggle]);
        editor.insertBefore(tableView, textarea);
        editor.appendChild(actions);
        editor.appendChild(note);

        function valueInput(type, value) {
            if (type === "boolean") {
                var select = element("select", { class: selectClass, "aria-label": "Value" }, [
                    element("option", { value: "true", text: "true" }),
                    element("option", { value: "false", text: "false" }),
                ]);
                select.value = value === "false" ? "false" : "true";
                return select;
            }
            // Dates are typed as YYYY-MM-DD, as everywhere in the back office (not the browser's own format).
            var input = element("input", { class: inputClass, "aria-label": "Value", type: "text" });
            if (type === "number") input.setAttribute("inputmode", "decimal");
            if (type === "date") input.setAttribute("placeholder", "YYYY-MM-DD");
            input.value = value;
            return input;
        }

        function addRow(name, type, value) {
            var nameInput = element("input", { class: inputClass + " attributes-name", "aria-label": "Name", type: "text" });
            nameInput.value = name;
            var typeSelect = element(
                "select",
                { class: selectClass + " attributes-type", "aria-label": "Type" },
                TYPES.map(function (t) {
                    return element("option", { value: t[0], text: t[1] });
                })
            );
            typeSelect.value = type;
            var valueCell = element("td", { class: "pb-2 pr-2 w-1/2" }, [valueInput(type, value)]);
            var remove = element("button", {
                type: "button",
                class: "attributes-remove material-symbols-outlined text-base-500 hover:text-red-600",
                title: "Remove this attribute",
                "aria-label": "Remove this attribute",
                text: "delete",
            });
            var row = element("tr", { class: "attributes-row" }, [
                element("td", { class: "pb-2 pr-2" }, [nameInput]),
                element("td", { class: "pb-2 pr-2" }, [typeSelect]),
                valueCell,
                element("td", { class: "pb-2" }, [remove]),
            ]);
            typeSelect.addEventListener("change", function () {
                var old = valueCell.firstChild.value;
                var next = typeSelect.value;
                var keep = next === "text" || next === "json" || (next === "number" && NUMBER.test(old.trim())) ||
                    (next === "date" && isDate(old));
                valueCell.replaceChild(valueInput(next, keep ? old : ""), valueCell.firstChild);
                write();
            });
            remove.addEventListener("click", function () {
                row.remove();
                write();
            });
            rows.appendChild(row);
            return row;
        }

        /** [which input, what is wrong] or null. */
        function rowProblem(name, type, text, seen) {
            if (!name.trim()) return ["name", "Give this attribute a name"];
            if (seen[name]) return ["name", "Two attributes are named " + name];
            if (type === "number" && !NUMBER.test(text.trim())) return ["value", "Type a number such as 42 or -1.5"];
            if (type === "date" && !isDate(text)) return ["value", "Type a date as YYYY-MM-DD, such as 2026-05-17"];
            if (type === "json") {
                try {
                    JSON.parse(text);
                } catch (error) {
                    return ["value", "This is not valid JSON"];
                }
            }
            return null;
        }

        /** The table into the textarea; each row's problem on its own inputs (the browser then refuses to submit). */
        function write() {
            var problems = 0;
            var said = [];
            var parts = [];
            var seen = {};
            Array.prototype.forEach.call(rows.querySelectorAll("tr.attributes-row"), function (row) {
                var nameInput = row.querySelector(".attributes-name");
                var type = row.querySelector(".attributes-type").value;
                var valueField = row.cells[2].firstChild;
                var name = nameInput.value;
                var text = valueField.value;
                nameInput.setCustomValidity("");
                valueField.setCustomValidity("");
                if (!name.trim() && !text.trim()) return; // an empty line is nothing
                var problem = rowProblem(name, type, text, seen);
                if (problem) {
                    (problem[0] === "name" ? nameInput : valueField).setCustomValidity(problem[1]);
                    said.push((name.trim() || "A new attribute") + ": " + problem[1]);
                    problems++;
                    return;
                }
                seen[name] = true;
                var json;
                if (type === "number" || type === "json") json = text.trim();
                else if (type === "boolean") json = text;
                else json = JSON.stringify(text);
                parts.push(JSON.stringify(name) + ": " + json);
            });
            textarea.value = "{" + parts.join(", ") + "}";
            empty.hidden = rows.children.length > 0;
            note.textContent = said.join(". ");
            return problems;
        }

        function showTable() {
            var found = members(textarea.value.trim() || "{}");
            if (found === null) {
                note.textContent = "This is not a JSON object of names and values: correct it here first.";
                return false;
            }
            note.textContent = "";
            rows.textContent = "";
            found.forEach(function (member) {
                var t = typed(member[1]);
                addRow(member[0], t[0], t[1]);
            });
            empty.hidden = rows.children.length > 0;
            tableView.hidden = false;
            add.hidden = false;
            textarea.hidden = true;
            toggle.textContent = "Edit as JSON";
            return true;
        }

        function showJson() {
            var problems = write();
            // The JSON is the editor now: the table's hidden inputs must not block the form.
            rows.querySelectorAll("input, select").forEach(function (field) {
                field.setCustomValidity("");
            });
            note.textContent = problems ? "Rows with a problem (no name, not a number...) were left out." : "";
            tableView.hidden = true;
            add.hidden = true;
            textarea.hidden = false;
            toggle.textContent = "Edit as a table";
        }

        rows.addEventListener("input", write);
        add.addEventListener("click", function () {
            addRow("", "text", "").querySelector(".attributes-name").focus();
            write();
        });
        toggle.addEventListener("click", function () {
            if (textarea.hidden) showJson();
            else showTable();
        });
        editor.closest("form").addEventListener("submit", function () {
            if (textarea.hidden) write();
        });
        if (!showTable()) showJson();
    }

    function start() {
        document.querySelectorAll("[data-attributes-editor]").forEach(setUp);
    }

    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
})();
