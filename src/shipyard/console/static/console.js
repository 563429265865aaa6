// The console's only script: open a part's editor, play a part's preview on demand or the
// whole script from any part, and never lose what a reviewer typed: drafts are kept in this
// browser until they are sent, leaving the page with unsent text asks first, and deciding with
// unsent text offers to save it first. It also says who else has the review open, shows how a
// request for changes will be read before it is sent, and answers the keyboard shortcuts.
const review = document.querySelector("[data-run]");
const draftKey = (form) => `shipyard-draft:${review.dataset.run}:${form.dataset.draft}`;
const editors = () => [...document.querySelectorAll("form[data-draft]")];
const typed = (form) => form.querySelector("textarea, input[name=value]");
// unsent: what the form holds is not what the revision says (a refused save's text included)
const unsent = () => editors().filter((form) => typed(form).value !== form.dataset.saved);
let leaving = false;

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const part = button.closest(".segment");
  if (button.name === "op" && part) {  // an operation on the turn as a whole
    const text = part.querySelector("form.save textarea");
    part.querySelector("form.save input[name=at]").value = String(text.selectionStart);
    if (button.value === "delete" && !confirm("Delete this part? It is kept in the revisions.")) {
      event.preventDefault();
      return;
    }
  }
  if (button.classList.contains("edit") && part) {
    const form = part.querySelector("form.save");
    form.hidden = !form.hidden;
    if (!form.hidden) {
      const text = form.querySelector("textarea");
      text.focus();
      text.setSelectionRange(text.value.length, text.value.length);  // go on typing at the end
    }
  }
  if (button.classList.contains("comment") && part) {
    const form = part.querySelector("form.part-comment");
    form.hidden = !form.hidden;
    if (!form.hidden) form.querySelector("textarea").focus();
  }
  if (button.classList.contains("play") && part) {
    stopAll();
    playPart(part);
  }
  if (button.classList.contains("play-all")) playFrom(parts()[0]);
  if (button.classList.contains("stop")) stopAll();
});

// --- listening: one part, or the whole script from any part --------------------------------
const parts = () => [...document.querySelectorAll(".segment")];
let playing = null;  // the part the whole-script player is on (null: not playing through)

function playPart(part) {
  const audio = part.querySelector("audio.preview");
  if (!audio) return null;
  if (!audio.src) audio.src = part.querySelector("button.play").dataset.src;  // made when asked
  audio.hidden = false;
  audio.play().catch(() => {});
  return audio;
}

function playFrom(part) {
  stopAll();
  if (!part) return;
  playing = part;
  part.classList.add("playing");
  part.scrollIntoView({ block: "nearest" });
  document.querySelector("button.stop")?.removeAttribute("hidden");
  const audio = playPart(part);
  audio?.addEventListener("ended", () => {
    if (playing === part) playFrom(parts()[parts().indexOf(part) + 1]);
  }, { once: true });
}

function stopAll() {
  playing = null;
  for (const audio of document.querySelectorAll("audio.preview")) audio.pause();
  for (const part of document.querySelectorAll(".segment.playing")) part.classList.remove("playing");
  document.querySelector("button.stop")?.setAttribute("hidden", "");
}

document.addEventListener("click", (event) => {  // click a part's words while playing: go there
  const words = event.target.closest(".segment .text");
  if (playing && words) playFrom(words.closest(".segment"));
});

document.addEventListener("click", (event) => {  // the run page: a chapter, heard from its start
  const chapter = event.target.closest(".chapters button[data-start]");
  const audio = document.querySelector(".media audio");
  if (!chapter || !audio) return;
  audio.currentTime = Number(chapter.dataset.start);
  audio.play().catch(() => {});
});

// --- keyboard shortcuts (listed on the page) --------------------------------------------------
document.addEventListener("keydown", (event) => {
  const typing = event.target.closest("textarea, input, select");
  if (typing && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    const form = typing.closest("form");
    if (form) {
      event.preventDefault();
      form.requestSubmit(form.querySelector(":scope > button[type=submit]") || undefined);
    }
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey || !review) return;
  const all = parts();
  const here = document.activeElement?.closest(".segment");
  const at = here ? all.indexOf(here) : -1;
  const go = (index) => all[Math.max(0, Math.min(all.length - 1, index))]?.focus();
  const actions = {
    j: () => go(at + 1),
    k: () => go(at < 0 ? 0 : at - 1),
    p: () => (playing ? stopAll() : playFrom(here || all[0])),
    e: () => here?.querySelector("button.edit")?.click(),
    c: () => here?.querySelector("button.comment")?.click(),
    d: () => document.querySelector("#decide")?.focus(),
  };
  if (actions[event.key]) {
    event.preventDefault();
    actions[event.key]();
  }
});

if (review) {
  // back from a save: focus stays on the turn just saved, not the top of the page
  const landed = location.hash.startsWith("#part-") && document.querySelector(location.hash);
  if (landed) {
    landed.focus();
    const form = landed.querySelector("form.save");
    if (form && !form.dataset.saved) {  // a part just inserted: ready to be written
      form.hidden = false;
      form.querySelector("textarea").focus();
    }
  }

  for (const form of editors()) {  // a draft left by a reload, a crash or a closed tab
    const draft = localStorage.getItem(draftKey(form));
    if (draft !== null && draft !== typed(form).value) {
      typed(form).value = draft;
      form.hidden = false;
      form.querySelector(".draft-note").hidden = false;
    }
    form.addEventListener("input", () => localStorage.setItem(draftKey(form), typed(form).value));
    form.addEventListener("submit", () => {
      leaving = true;
      localStorage.removeItem(draftKey(form));
    });
  }

  // who else has this review open, said every few seconds
  const say = async () => {
    const answer = await fetch(`${review.dataset.base}/runs/${review.dataset.run}/review/presence`, {
      method: "POST", headers: { "X-CSRF-Token": review.dataset.csrf }, credentials: "same-origin",
    }).catch(() => null);
    if (!answer?.ok) return;
    const { others } = await answer.json();
    document.querySelector(".presence").textContent =
      others.length ? `Also here now: ${others.join(", ")}` : "";
  };
  setInterval(say, Number(review.dataset.presence) * 1000);

  // a request for changes, as the reviser will read it, before it is sent
  const request = document.querySelector("form.request");
  let reading = null;
  request?.querySelector("textarea").addEventListener("input", (event) => {
    clearTimeout(reading);
    reading = setTimeout(async () => {
      const body = new URLSearchParams({ csrf: review.dataset.csrf, comment: event.target.value });
      const answer = await fetch(`${review.dataset.base}/runs/${review.dataset.run}/review/plan`, {
        method: "POST", body, credentials: "same-origin",
      }).catch(() => null);
      if (!answer?.ok) return;
      const { applied, not_applied: missed, known } = await answer.json();
      const plan = request.querySelector("output.plan");
      plan.replaceChildren();
      if (!known || !event.target.value.trim()) return;
      const lines = [
        ...applied.map((line) => ["will", line]),
        ...missed.map((line) => ["cannot", line]),
      ];
      if (!lines.length) lines.push(["cannot", "nothing in it can be applied without a model"]);
      const heading = document.createElement("p");
      heading.textContent = "Read without a model, this request will:";
      const list = document.createElement("ul");
      for (const [kind, line] of lines) {
        const item = document.createElement("li");
        item.className = kind;
        item.textContent = kind === "will" ? line : `not apply: ${line}`;
        list.append(item);
      }
      plan.append(heading, list);
    }, 400);
  });

  window.addEventListener("beforeunload", (event) => {
    if (!leaving && unsent().length) event.preventDefault();  // the browser asks
  });

  const dialog = document.querySelector("dialog.unsent");
  let pending = null;  // the decision waiting on the reviewer's choice
  for (const form of document.querySelectorAll("form.decide")) {
    form.addEventListener("submit", (event) => {
      const dirty = unsent();
      if (!dirty.length || !dialog || event.submitter?.value === "request_changes") {
        leaving = true;
        return;
      }
      event.preventDefault();
      pending = { form, action: event.submitter?.value || "approve" };
      dialog.querySelector(".count").textContent = String(dirty.length);
      dialog.showModal();
    });
  }
  dialog?.addEventListener("close", () => {
    if (!pending) return;
    const { form, action } = pending;
    pending = null;
    const choice = dialog.returnValue;
    if (choice === "cancel" || !choice) return;
    const dirty = unsent();
    for (const editor of dirty) localStorage.removeItem(draftKey(editor));
    if (choice === "save") {  // the edits go with the decision, saved and checked first
      for (const editor of dirty) {
        for (const [name, value] of new FormData(editor)) {
          if (["segment", "text", "field", "value"].includes(name)) {
            const input = document.createElement("input");
            Object.assign(input, { type: "hidden", name: `edit_${name}`, value });
            form.append(input);
          }
        }
      }
    }
    const chosen = document.createElement("input");
    Object.assign(chosen, { type: "hidden", name: "action", value: action });
    form.append(chosen);
    leaving = true;
    form.submit();
  });
}
