/* Copy buttons: <button data-copy-target="id"> copies the value of #id. No dependencies. */
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copyTarget);
  const status = button.parentElement.querySelector(".copy-status");
  try {
    await navigator.clipboard.writeText(field.value);
    if (status) status.textContent = "Copied.";
  } catch (error) {
    field.select(); // without clipboard access (plain http), select it for Ctrl+C
    if (status) status.textContent = "Press Ctrl+C (or Cmd+C) to copy.";
  }
});
