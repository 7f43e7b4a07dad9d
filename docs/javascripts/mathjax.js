// MathJax 3 configuration for every page of the site. mkdocs.yml loads this file first, then
// the vendored MathJax (javascripts/mathjax/tex-svg-full.js), so the site needs no network.
//
// Maths reaches the browser in two forms:
//   - Markdown pages: pymdownx.arithmatex (generic: true) turns $...$ and $$...$$ into
//     <span class="arithmatex">\(...\)</span> and <div class="arithmatex">\[...\]</div>;
//   - notebook pages: mkdocs-jupyter leaves a notebook's $...$ and $$...$$ as they are, inside
//     its rendered Markdown cells (class jp-RenderedMarkdown; LaTeX outputs: jp-RenderedLatex),
//     and in the table of contents (md-nav--secondary) when a heading holds maths.
// Only those elements are typeset, so a dollar sign anywhere else (code, API docstrings, tables
// of prices) is left alone. mkdocs-jupyter's own MathJax 2 loader stays inert: its script has
// an empty URL and its configuration block is not JavaScript.
const MATH_SELECTOR = ".arithmatex, .jp-RenderedMarkdown, .jp-RenderedLatex, .md-nav--secondary";

function typesetSiteMaths() {
  const roots = Array.from(document.querySelectorAll(MATH_SELECTOR));
  if (roots.length === 0) {
    return Promise.resolve();
  }
  MathJax.texReset(); // equation numbers and labels start afresh on every page
  return MathJax.typesetPromise(roots);
}

window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true, // \$ is a literal dollar in a notebook
    processEnvironments: true,
  },
  startup: {
    typeset: false, // not the whole page: only the elements above
    pageReady: () => MathJax.startup.defaultPageReady().then(typesetSiteMaths),
  },
};
