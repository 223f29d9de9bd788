// The live debugger: renders the server-sent events of /debugger/stream.
// Built with DOM calls and textContent only, so no payload can inject markup.
// A stream starts with calls from the record; after a reconnect they come again, so every kind
// of item is shown once: calls by messageId, fates by connection, refused calls by content.
(() => {
  const feed = document.getElementById("feed");
  if (!feed) return;
  const base = feed.dataset.base;
  const live = document.getElementById("live");
  const empty = document.getElementById("feed-empty");
  const MAX_ROWS = 300;
  const rows = new Map(); // messageId -> {element, fates, deliveries}
  const refused = new Map(); // content of a refused call -> the times it was shown
  let paused = false;

  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2));
  const clock = (seconds) => {
    const when = new Date(seconds * 1000);
    const time = when.toLocaleTimeString([], { hour12: false });
    if (when.toDateString() === new Date().toDateString()) return time;
    return when.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
  };
  // A fate as a chip; a filtered call's chip names the rule that filtered it.
  const fateChip = (fate, connection, detail) => {
    const chip = el("span", "fate fate-" + fate, (connection ? connection + ": " : "") + fate.replace("_", "-"));
    if (connection && fate === "filtered" && detail) {
      chip.append(el("span", "rule", " · " + detail));
      chip.title = detail;
    }
    return chip;
  };

  // The call as stored, saved as a file for `turnout playbook test --fixtures` (the same name
  // `turnout trace --fixtures` gives it). The file is made when the link is clicked.
  function fixtureLink(m) {
    const link = el("a", "small fixture", "Download as fixture");
    let name = String(m.messageId || "").replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 100);
    name = name.replace(/^\.+/, "") || "call";
    if (name.endsWith(".expected")) name += "_";
    link.download = name + ".json";
    link.href = "#";
    link.addEventListener("click", () => {
      const text = JSON.stringify(sorted(m), null, 2) + "\n";
      link.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    });
    return link;
  }
  // Keys in order at every depth, as the command line writes them: a fixture diffs cleanly.
  const sorted = (value) => {
    if (Array.isArray(value)) return value.map(sorted);
    if (value === null || typeof value !== "object") return value;
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sorted(value[key])]));
  };

  function insert(node) {
    if (empty) empty.remove();
    feed.prepend(node);
    while (feed.children.length > MAX_ROWS) {
      const last = feed.lastElementChild;
      rows.delete(last.dataset.id);
      last.remove();
    }
  }

  function received(item) {
    const m = item.message || {};
    if (rows.has(m.messageId)) return;
    const row = el("details", "msg");
    row.dataset.id = m.messageId;
    row.dataset.type = m.type;
    const summary = el("summary");
    summary.append(
      el("span", "time", clock(item.at)),
      el("span", "type", m.type),
      el("span", "name", item.label || m.type || ""),
      el("span", "who", m.userId || m.anonymousId || ""),
    );
    const fates = el("span", "fates");
    fates.append(fateChip("pending"));
    summary.append(fates);
    const body = el("div", "body");
    const original = el("div");
    original.append(el("h4", "", "Payload as stored"), el("pre", "code", pretty(m)));
    const link = el("a", "small", "Full trace →");
    link.href = base + "/messages/" + encodeURIComponent(m.messageId || "");
    original.append(link, " · ", fixtureLink(m));
    const deliveries = el("div");
    deliveries.append(el("h4", "", "What each connection made of it"));
    const none = el("p", "hint", "Waiting for the connections…");
    deliveries.append(none);
    body.append(original, deliveries);
    row.append(summary, body);
    rows.set(m.messageId, { row, fates, deliveries, none, seen: new Map() });
    insert(row);
  }

  function delivery(item) {
    const entry = rows.get(item.message_id);
    if (!entry) return;
    entry.none.remove();
    const pending = entry.fates.querySelector(".fate-pending");
    if (pending) pending.remove();
    const old = entry.seen.get(item.connection);
    if (old) { old.chip.remove(); old.block.remove(); }
    const chip = fateChip(item.fate, item.connection, item.detail);
    entry.fates.append(chip);
    const block = el("div", "delivery");
    const title = el("h4");
    title.append(document.createTextNode(item.connection + " "), fateChip(item.fate));
    block.append(title);
    if (item.detail) block.append(el("p", "", item.detail));
    // The revision that shaped it, and (seen live; a stored record does not keep them) the
    // rules whose condition matched.
    if (item.playbook_revision != null) {
      let text = "Playbook revision " + item.playbook_revision;
      if (item.rules_applied) {
        text += item.rules_applied.length ? ": " + item.rules_applied.join(", ") : ": no rule applied";
      }
      block.append(el("p", "rules-applied", text));
    }
    if (item.operations && item.operations.length) {
      block.append(el("h4", "", "Operations"), el("pre", "code", pretty(item.operations)));
    }
    if (item.request) block.append(el("h4", "", "Request"), el("pre", "code", item.request));
    if (item.response) block.append(el("h4", "", "Response"), el("pre", "code", item.response));
    entry.deliveries.append(block);
    entry.seen.set(item.connection, { chip, block });
  }

  function shownBefore(item) {
    const key = [item.source, item.code, item.message, item.payload].join("\u0000");
    const times = refused.get(key) || [];
    if (times.some((at) => Math.abs(at - item.at) < 2)) return true;
    refused.set(key, times.concat([item.at]));
    return false;
  }

  function rejected(item) {
    if (shownBefore(item)) return;
    const row = el("details", "msg rejected");
    row.dataset.id = "reject-" + Math.random();
    const summary = el("summary");
    summary.append(
      el("span", "time", clock(item.at)),
      el("span", "type", "refused"),
      el("span", "name", item.message),
      el("span", "who", item.source || ""),
    );
    const fates = el("span", "fates");
    fates.append(fateChip("rejected"));
    summary.append(fates);
    const body = el("div", "body");
    const what = el("div");
    what.append(el("h4", "", "Reason: " + item.code), el("pre", "code", item.payload || ""));
    body.append(what);
    row.append(summary, body);
    insert(row);
  }

  // The calls from the record are out: newer ones arrive live, above a divider.
  function liveFromHere() {
    feed.querySelectorAll(".feed-mark").forEach((mark) => mark.remove());
    if (!feed.querySelector(".msg")) return;
    const mark = el("p", "feed-mark", "Live: newer calls appear above this line as they arrive");
    mark.dataset.id = "mark";
    feed.prepend(mark);
  }

  const handlers = { received, delivery, rejected, live: liveFromHere };
  const source = new EventSource(feed.dataset.stream);
  for (const [kind, handle] of Object.entries(handlers)) {
    source.addEventListener(kind, (event) => {
      if (paused) return;
      try {
        handle(JSON.parse(event.data));
      } catch (error) {
        console.error("debugger: could not show a " + kind + " item", error);
      }
    });
  }
  source.onopen = () => { live.dataset.state = "live"; live.textContent = "Live"; };
  source.onerror = () => { live.dataset.state = "error"; live.textContent = "Reconnecting…"; };

  document.getElementById("pause-feed").addEventListener("click", (event) => {
    paused = !paused;
    event.target.setAttribute("aria-pressed", String(paused));
    event.target.textContent = paused ? "Resume" : "Pause";
    live.dataset.state = paused ? "error" : "live";
    live.textContent = paused ? "Paused" : "Live";
  });
  document.getElementById("clear-feed").addEventListener("click", () => {
    feed.replaceChildren();
    rows.clear();
    refused.clear();
  });
})();
