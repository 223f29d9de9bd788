// Small conveniences that need a script; everything else works without one.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const holder = button.closest(".copyable");
  const text = holder ? holder.querySelector("code").textContent : "";
  navigator.clipboard.writeText(text).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1200);
  });
});
