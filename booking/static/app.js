// Small progressive enhancements; every page works without them. Loaded from /static so that
// the Content-Security-Policy can forbid inline scripts.
document.addEventListener("click", (event) => {
  const field = event.target.closest("[data-select-on-click]");
  if (field) field.select();  // a feed link is copied whole
});

// "Copy link" buttons: shown only where the clipboard can be written; the field stays for
// copying by hand.
document.querySelectorAll("[data-copy]").forEach((button) => {
  if (!navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(field.value);
      button.textContent = button.dataset.copied;
    } catch (error) {
      field.select();  // refused (no permission): selected, ready for Ctrl+C
    }
  });
});

// A destructive form asks first (data-confirm holds the question, in the reader's language).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
