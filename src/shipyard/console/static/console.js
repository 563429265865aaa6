// The console's only script: open a part's editor, play a part's preview on demand, and never
// lose what a reviewer typed: drafts are kept in this browser until they are sent, leaving the
// page with unsent text asks first, and deciding with unsent text offers to save it first.
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
  if (button.classList.contains("play") && part) {
    const audio = part.querySelector("audio.preview");
    if (!audio.src) audio.src = button.dataset.src;  // synthesized when first asked for
    audio.hidden = false;
    audio.play().catch(() => {});
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
