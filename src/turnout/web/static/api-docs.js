// Draws the management API description with Swagger UI (served by Turnout itself, no CDN).
document.addEventListener("DOMContentLoaded", () => {
  const holder = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: holder.dataset.specUrl,
    domNode: holder,
    deepLinking: true,
    validatorUrl: null,
  });
});
