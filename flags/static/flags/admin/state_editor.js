// The structured editor of a flag's state (targets, rules, default serve): form controls that
// write the same JSON the API takes into the field's textarea, which is what the form posts;
// the services validate it (one validator) and their problems are shown beside the control
// they name. "JSON" switches a field to its raw text for power users.
"use strict";
(function () {
  var LIST_OPERATORS = ["in", "not_in"];
  var STRINGS_OPERATORS = ["contains", "starts_with", "ends_with"];
  var NUMBER_OPERATORS = ["gt", "gte", "lt", "lte"];
  var SEGMENT_OPERATORS = ["in_segment", "not_in_segment"];

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") el.textContent = attrs[name];
      else if (name.slice(0, 2) === "on") el.addEventListener(name.slice(2), attrs[name]);
      else el.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) el.appendChild(child); });
    return el;
  }

  function select(options, value, attrs) {
    var el = h("select", attrs);
    options.forEach(function (option) {
      var o = h("option", {value: option, text: option});
      if (option === value) o.selected = true;
      el.appendChild(o);
    });
    if (value !== undefined && value !== null && options.indexOf(value) < 0) {
      var unknown = h("option", {value: value, text: value + " (unknown)"});
      unknown.selected = true;
      el.appendChild(unknown);
    }
    return el;
  }

  function button(text, onclick, attrs) {
    return h("button", Object.assign({type: "button", class: "button", text: text, onclick: onclick}, attrs || {}));
  }

  // A value typed in a box, as JSON: numbers and booleans as such when the text is exactly one.
  function scalar(text) {
    var t = text.trim();
    if (t === "true") return true;
    if (t === "false") return false;
    if (t !== "" && isFinite(Number(t)) && String(Number(t)) === t) return Number(t);
    return t;
  }
  function items(text) {
    return text.split(/[,\n]/).map(function (v) { return v.trim(); }).filter(Boolean);
  }
  function shown(value) {
    if (Array.isArray(value)) return value.join(", ");
    return value === undefined || value === null ? "" : String(value);
  }
  function operand(operator, text) {
    if (LIST_OPERATORS.indexOf(operator) >= 0) return items(text).map(scalar);
    if (STRINGS_OPERATORS.indexOf(operator) >= 0) {
      var list = items(text);
      return list.length === 1 ? list[0] : list;
    }
    if (NUMBER_OPERATORS.indexOf(operator) >= 0) {
      // Not a number: kept as typed, so the validator names the problem beside it.
      return text.trim() !== "" && isFinite(Number(text)) ? Number(text) : text.trim();
    }
    if (operator === "equals" || operator === "not_equals") return scalar(text);
    return text.trim();
  }

  // {"variant": V} or {"split": [{"variant", "weight"}...]}: shares typed in percent (weights
  // are relative; 10 % is stored as 1000 of 10000), with their live sum.
  function serveEditor(serve, ctx, path, changed) {
    serve = serve && typeof serve === "object" ? serve : {variant: ctx.variants[0]};
    var mode = "split" in serve ? "split" : "variant";
    var box = h("div", {class: "serve-editor", "data-path": path});
    var variantSelect = select(ctx.variants, serve.variant, {"data-path": path + ".variant", class: "serve-variant"});
    var rows = h("div", {class: "split-rows"});
    var sum = h("span", {class: "sum"});
    var total = (serve.split || []).reduce(function (a, s) { return a + (Number(s.weight) || 0); }, 0) || 1;
    var shares = (serve.split || [{variant: ctx.variants[0], weight: 1}]).map(function (s) {
      return {variant: s.variant, weight: s.weight, percent: Math.round(s.weight * 10000 / total) / 100};
    });
    // Stored weights are relative ([1, 3] is 25/75): kept as they are until a share is edited,
    // so opening and saving the page never rewrites a split nobody touched.
    var reweighed = !serve.split;
    var extra = {};
    Object.keys(serve).forEach(function (k) { if (k !== "variant" && k !== "split") extra[k] = serve[k]; });
    var modeName = "mode-" + Math.random().toString(36).slice(2);
    var asVariant = h("input", {type: "radio", name: modeName, value: "variant", class: "serve-mode"});
    var asSplit = h("input", {type: "radio", name: modeName, value: "split", class: "serve-mode"});
    (mode === "split" ? asSplit : asVariant).checked = true;

    function drawSplit() {
      rows.innerHTML = "";
      shares.forEach(function (share, i) {
        rows.appendChild(h("div", {class: "row split-row"}, [
          select(ctx.variants, share.variant, {"data-path": path + ".split[" + i + "].variant", class: "split-variant",
            onchange: function (e) { share.variant = e.target.value; update(); }}),
          h("input", {type: "number", min: "0", max: "100", step: "0.01", value: share.percent, class: "split-percent",
            "data-path": path + ".split[" + i + "].weight", style: "width:6em",
            oninput: function (e) { share.percent = Number(e.target.value); reweighed = true; update(); }}),
          h("span", {text: "%"}),
          shares.length > 1 ? button("remove", function () { shares.splice(i, 1); reweighed = true; drawSplit(); update(); }) : null,
        ]));
      });
      rows.appendChild(h("div", {class: "row"}, [
        button("+ variant", function () {
          var unused = ctx.variants.filter(function (v) { return !shares.some(function (s) { return s.variant === v; }); });
          shares.push({variant: unused[0] || ctx.variants[0], percent: 0});
          reweighed = true;
          drawSplit(); update();
        }, {class: "button add-share"}),
        sum,
      ]));
    }
    function value() {
      if (asVariant.checked) return Object.assign({}, extra, {variant: variantSelect.value});
      return Object.assign({}, extra, {split: shares.map(function (s) {
        var weight = reweighed ? Math.round((Number(s.percent) || 0) * 100) : s.weight;
        return {variant: s.variant, weight: weight};
      })});
    }
    function update() {
      var percent = shares.reduce(function (a, s) { return a + (Number(s.percent) || 0); }, 0);
      sum.textContent = "Sum: " + (Math.round(percent * 100) / 100) + " %" + (Math.abs(percent - 100) > 0.001 ? " (must be 100 %)" : "");
      sum.className = "sum" + (Math.abs(percent - 100) > 0.001 ? " bad" : "");
      variantSelect.style.display = asVariant.checked ? "" : "none";
      rows.style.display = asSplit.checked ? "" : "none";
      changed();
    }
    variantSelect.addEventListener("change", update);
    asVariant.addEventListener("change", update);
    asSplit.addEventListener("change", update);
    box.appendChild(h("div", {class: "row"}, [
      h("label", {}, [asVariant, document.createTextNode(" one variant")]),
      h("label", {}, [asSplit, document.createTextNode(" a percentage split")]),
      variantSelect,
    ]));
    box.appendChild(rows);
    drawSplit();
    update();
    return {el: box, value: value, valid: function () {
      if (!asSplit.checked) return true;
      var percent = shares.reduce(function (a, s) { return a + (Number(s.percent) || 0); }, 0);
      return Math.abs(percent - 100) <= 0.001;
    }};
  }

  function targetsEditor(targets, ctx, changed) {
    var list = Array.isArray(targets) ? targets.map(function (t) { return Object.assign({}, t); }) : [];
    var box = h("div", {class: "targets-editor"});
    function draw() {
      box.innerHTML = "";
      list.forEach(function (target, i) {
        box.appendChild(h("div", {class: "row target-row"}, [
          select(ctx.variants, target.variant, {"data-path": "targets[" + i + "].variant", class: "target-variant",
            onchange: function (e) { target.variant = e.target.value; changed(); }}),
          h("span", {text: "for the keys"}),
          h("input", {type: "text", value: shown(target.values), size: "60", class: "target-values",
            placeholder: "user-1, user-2", "data-path": "targets[" + i + "].values",
            oninput: function (e) { target.values = items(e.target.value); changed(); }}),
          button("remove", function () { list.splice(i, 1); draw(); changed(); }),
        ]));
      });
      box.appendChild(button("+ individual target", function () {
        list.push({variant: ctx.variants[0], values: []}); draw(); changed();
      }, {class: "button add-target"}));
    }
    draw();
    return {el: box, value: function () { return list; }, valid: function () { return true; }};
  }

  function rulesEditor(rules, ctx, changed) {
    var list = Array.isArray(rules) ? rules.map(function (r) { return Object.assign({}, r); }) : [];
    var box = h("div", {class: "rules-editor"});
    var serves = [];
    function conditionRow(rule, i, condition, j, redraw) {
      var base = "rules[" + i + "].conditions[" + j + "]";
      var segmental = SEGMENT_OPERATORS.indexOf(condition.operator) >= 0;
      var attribute = h("input", {type: "text", value: condition.attribute || "", placeholder: "attribute, e.g. country",
        class: "condition-attribute", "data-path": base + ".attribute", size: "18",
        oninput: function (e) { condition.attribute = e.target.value.trim(); changed(); }});
      var operator = select(ctx.operators, condition.operator, {class: "condition-operator", "data-path": base + ".operator",
        onchange: function (e) {
          var was = SEGMENT_OPERATORS.indexOf(condition.operator) >= 0;
          condition.operator = e.target.value;
          var now = SEGMENT_OPERATORS.indexOf(condition.operator) >= 0;
          if (now) { delete condition.attribute; condition.value = ctx.segments.slice(0, 1); }
          else if (was) { condition.value = ""; }
          else { condition.value = operand(condition.operator, shown(condition.value)); }
          redraw(); changed();
        }});
      var value;
      if (segmental) {
        value = select(ctx.segments, Array.isArray(condition.value) ? condition.value[0] : condition.value,
          {class: "condition-segment", "data-path": base + ".value",
           onchange: function (e) { condition.value = [e.target.value]; changed(); }});
      } else {
        value = h("input", {type: "text", value: shown(condition.value), class: "condition-value", size: "34",
          "data-path": base + ".value",
          placeholder: LIST_OPERATORS.indexOf(condition.operator) >= 0 ? "DE, AT, CH" : "value",
          oninput: function (e) { condition.value = operand(condition.operator, e.target.value); changed(); }});
      }
      return h("div", {class: "row condition-row"}, [
        segmental ? h("span", {text: "context"}) : attribute, operator, value,
        button("remove", function () { rule.conditions.splice(j, 1); redraw(); changed(); }),
      ]);
    }
    function draw() {
      box.innerHTML = "";
      serves = [];
      list.forEach(function (rule, i) {
        rule.conditions = Array.isArray(rule.conditions) ? rule.conditions : [];
        var field = h("fieldset", {class: "rule", "data-path": "rules[" + i + "]"});
        var conditions = h("div", {class: "conditions"});
        function redraw() {
          conditions.innerHTML = "";
          rule.conditions.forEach(function (condition, j) { conditions.appendChild(conditionRow(rule, i, condition, j, redraw)); });
          conditions.appendChild(button("+ condition", function () {
            rule.conditions.push({attribute: "", operator: "equals", value: ""}); redraw(); changed();
          }, {class: "button add-condition"}));
        }
        redraw();
        var serve = serveEditor(rule.serve, ctx, "rules[" + i + "].serve", function () { rule.serve = serve ? serve.value() : rule.serve; changed(); });
        rule.serve = serve.value();
        serves.push(serve);
        field.appendChild(h("div", {class: "row"}, [
          h("strong", {text: "Rule " + (i + 1)}),
          h("input", {type: "text", value: rule.id || "", placeholder: "id (for rollouts), e.g. eu", size: "16",
            class: "rule-id", "data-path": "rules[" + i + "].id",
            oninput: function (e) { if (e.target.value.trim()) rule.id = e.target.value.trim(); else delete rule.id; changed(); }}),
          i > 0 ? button("↑", function () { list.splice(i - 1, 0, list.splice(i, 1)[0]); draw(); changed(); }) : null,
          button("remove rule", function () { list.splice(i, 1); draw(); changed(); }),
        ]));
        field.appendChild(h("div", {class: "help", text: "When all of these hold (rules are tried in order):"}));
        field.appendChild(conditions);
        field.appendChild(h("div", {class: "help", text: "serve:"}));
        field.appendChild(serve.el);
        box.appendChild(field);
      });
      box.appendChild(button("+ rule", function () {
        list.push({conditions: [{attribute: "", operator: "equals", value: ""}], serve: {variant: ctx.variants[0]}});
        draw(); changed();
      }, {class: "button add-rule"}));
    }
    draw();
    return {el: box, value: function () { return list; },
            valid: function () { return serves.every(function (s) { return s.valid(); }); }};
  }

  var EDITORS = {targets: targetsEditor, rules: rulesEditor,
                 serve: function (v, ctx, changed) { return serveEditor(v, ctx, "default_serve", changed); }};

  function mount(textarea) {
    var ctx = {
      variants: JSON.parse(textarea.dataset.variants || "[]"),
      operators: JSON.parse(textarea.dataset.operators || "[]"),
      segments: JSON.parse(textarea.dataset.segments || "[]"),
    };
    var kind = textarea.dataset.editor;
    var holder = h("div", {class: "structured-editor", "data-editor-for": textarea.name});
    var problem = h("div", {class: "problem"});
    var toggle = h("a", {href: "#", class: "json-toggle", text: "JSON"});
    var editor = null;
    function write() {
      if (!editor) return;
      var value = editor.value();
      textarea.value = JSON.stringify(value, null, 2);
    }
    function build() {
      var text = textarea.value.trim();
      var value;
      try { value = text ? JSON.parse(text) : (kind === "serve" ? null : []); }
      catch (error) { problem.textContent = "Not valid JSON (" + error.message + "): fix it in the JSON box."; return false; }
      problem.textContent = "";
      holder.innerHTML = "";
      editor = EDITORS[kind](value, ctx, write);
      holder.appendChild(editor.el);
      write();
      return true;
    }
    function showJson(json) {
      holder.style.display = json ? "none" : "";
      textarea.style.display = json ? "" : "none";
      toggle.textContent = json ? "Use the form" : "JSON";
      textarea.dataset.mode = json ? "json" : "form";
    }
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      if (textarea.style.display === "none") { showJson(true); return; }
      if (build()) showJson(false);
    });
    textarea.parentNode.insertBefore(holder, textarea);
    textarea.parentNode.insertBefore(problem, textarea);
    var label = textarea.closest(".form-row, .fieldBox, div");
    var labelEl = label && label.querySelector("label");
    (labelEl || holder).appendChild(toggle);
    if (build()) showJson(false); else showJson(true);
    textarea.form.addEventListener("submit", function (event) {
      if (textarea.style.display === "none" && editor && !editor.valid()) {
        event.preventDefault();
        problem.textContent = "A split's shares must add up to 100 %.";
        holder.scrollIntoView({block: "center"});
      }
    });
    placeErrors(textarea, holder);
  }

  // The services' problems ("rules[0].conditions[0].value: must ...") beside the control.
  function placeErrors(textarea, holder) {
    var row = textarea.closest(".form-row") || textarea.parentNode;
    row.querySelectorAll(".errorlist li").forEach(function (li) {
      var match = /^([\w\[\]\.]+): (.*)$/.exec(li.textContent);
      var path = match ? match[1] : null;
      var target = path && holder.querySelector('[data-path="' + path + '"]');
      if (!target && path) {
        // the closest named ancestor path: rules[0].serve.split -> rules[0].serve
        var shorter = path;
        while (!target && shorter.search(/[\.\[]/) > 0) {
          shorter = shorter.replace(/(\.[^\.\[]+|\[\d+\])$/, "");
          target = holder.querySelector('[data-path="' + shorter + '"]');
        }
      }
      if (target) {
        target.classList.add("has-problem");
        target.insertAdjacentElement("afterend", h("span", {class: "problem field-problem", text: match[2]}));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea[data-editor]").forEach(function (textarea) {
      if (!/__prefix__/.test(textarea.name)) mount(textarea);
    });
  });
})();
