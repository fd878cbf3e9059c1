// The little behaviour the pages ask for with data- attributes. The Content-Security-Policy
// runs scripts from this origin only, so no template carries inline script or style.
"use strict";

// <form data-confirm="Question?">: submitted only if the user agrees.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// <form data-env-switch="tab">: choosing an environment opens the same tab of that environment
// (an empty tab is the environment's own page).
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-env-switch]");
  if (form) {
    const env = encodeURIComponent(form.elements.env.value);
    const tab = form.dataset.envSwitch;
    window.location.href = `/environments/${env}` + (tab ? `/${tab}` : "");
  }
});

// <a data-back>: back to the previous page (the link's own href when there is none).
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-back]");
  if (link && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});

// <span data-tag-color="#hex">: the tag's colour, set through the CSS object model.
function paintTags(root) {
  for (const tag of root.querySelectorAll("[data-tag-color]")) {
    tag.style.setProperty("--tag", tag.dataset.tagColor);
  }
}
document.addEventListener("DOMContentLoaded", () => paintTags(document));
document.addEventListener("htmx:load", (event) => paintTags(event.detail.elt));

// <p data-scroll-here>: a page that answers a rejected form opens at that form's card, where
// the user was looking, rather than at the top.
document.addEventListener("DOMContentLoaded", () => {
  const here = document.querySelector("[data-scroll-here]");
  if (here) {
    (here.closest(".card") || here).scrollIntoView({ block: "start" });
  }
});
