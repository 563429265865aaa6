// The console's only script: open a part's editor, and play a part's preview on demand.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const part = button.closest(".segment");
  if (button.classList.contains("edit") && part) {
    const form = part.querySelector("form.save");
    form.hidden = !form.hidden;
    if (!form.hidden) form.querySelector("textarea").focus();
  }
  if (button.classList.contains("play") && part) {
    const audio = part.querySelector("audio.preview");
    if (!audio.src) audio.src = button.dataset.src;  // synthesized when first asked for
    audio.hidden = false;
    audio.play().catch(() => {});
  }
});
