// Small progressive enhancements; every page works without them. Loaded from /static so that
// the Content-Security-Policy can forbid inline scripts.
document.addEventListener("click", (event) => {
  const field = event.target.closest("[data-select-on-click]");
  if (field) field.select();  // a feed link is copied whole
});
