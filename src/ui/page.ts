// The HTML shell of the ops page. No inline script or style, so a strict CSP holds; app.js fills it.

/** The document served at `GET /ui`. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rampart ops</title>
<link rel="stylesheet" href="/ui/app.css">
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <h1>Rampart <span class="muted">ops</span></h1>
  <p id="connection" class="connection" role="status">Not connected</p>
  <button type="button" id="sign-out" class="secondary" hidden>Forget token</button>
</header>
<div id="announce" class="sr-only" aria-live="polite" aria-atomic="true"></div>
<div id="error" class="error" role="alert" hidden></div>
<main id="main" tabindex="-1">
  <noscript><p>This page needs JavaScript. The same data is in the API: see docs/api.md.</p></noscript>
  <section id="login" class="card login" aria-labelledby="login-title" hidden>
    <h2 id="login-title">Sign in</h2>
    <form id="token-form">
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required aria-describedby="token-help">
      <p id="token-help" class="help">Kept in this tab's session storage only; sent as <code>Authorization: Bearer</code>.</p>
      <button type="submit">Use token</button>
    </form>
  </section>
  <div id="workspace" class="workspace" hidden>
    <section id="flags" class="card flags" aria-labelledby="flags-title">
      <h2 id="flags-title">Flags</h2>
      <div class="filter">
        <label for="filter">Filter by key, description or status</label>
        <input id="filter" type="search" autocomplete="off">
      </div>
      <table id="flag-table" class="grid">
        <caption class="sr-only">Flags; sort with the column header buttons, open a flag with its key button</caption>
        <thead>
          <tr>
            <th scope="col" data-sort="key"><button type="button">Key</button></th>
            <th scope="col" data-sort="enabled"><button type="button">Toggle</button></th>
            <th scope="col" data-sort="percentage" class="num"><button type="button">Percentage</button></th>
            <th scope="col" data-sort="status"><button type="button">Rollout</button></th>
            <th scope="col" data-sort="stage"><button type="button">Stage</button></th>
          </tr>
        </thead>
        <tbody></tbody>
      </table>
      <p id="flags-empty" class="muted" hidden>No flags match.</p>
    </section>
    <section id="detail" class="card detail" aria-labelledby="detail-title" hidden>
      <h2 id="detail-title" tabindex="-1"></h2>
      <p id="detail-description" class="muted"></p>
      <dl id="detail-summary" class="summary"></dl>
      <div class="actions" role="group" aria-label="Actions">
        <button type="button" id="kill" class="danger">Kill switch</button>
        <button type="button" data-command="pause">Pause</button>
        <button type="button" data-command="resume">Resume</button>
        <button type="button" data-command="approve">Approve</button>
        <button type="button" data-command="abort" class="danger-outline">Abort</button>
      </div>
      <p id="action-ok" class="result" role="status"></p>
      <p id="action-error" class="result error-text" role="alert"></p>
      <h3 id="timeline-title">Timeline</h3>
      <figure class="timeline">
        <div id="chart"></div>
        <div id="tooltip" class="tooltip" role="tooltip" hidden></div>
        <figcaption class="legend"><span class="key-line"></span> percentage served
          <span class="key-change"></span> flag change
          <span class="key-decision"></span> guard decision
          <span class="key-hold"></span> hold</figcaption>
      </figure>
      <details>
        <summary>Timeline as a table</summary>
        <table id="events" class="grid"><caption class="sr-only">Changes and decisions, newest first</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Kind</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Why and observed values</th></tr></thead>
          <tbody></tbody></table>
      </details>
      <h3>Criteria (current stage)</h3>
      <table id="criteria" class="grid"><caption class="sr-only">Latest sample of each criterion against its threshold</caption>
        <thead><tr><th scope="col">Criterion</th><th scope="col" class="num">Latest value</th><th scope="col">Threshold</th><th scope="col">Verdict</th><th scope="col" class="num">Passes</th><th scope="col" class="num">Fails in a row</th><th scope="col">Sampled</th></tr></thead>
        <tbody></tbody></table>
      <h3>Outcomes (last 15 minutes)</h3>
      <table id="outcomes" class="grid"><caption class="sr-only">Outcome success rate and p95 latency per cohort</caption>
        <thead><tr><th scope="col">Cohort</th><th scope="col" class="num">Events</th><th scope="col" class="num">Success rate</th><th scope="col" class="num">p95 latency</th></tr></thead>
        <tbody></tbody></table>
    </section>
  </div>
</main>
<dialog id="kill-dialog" aria-labelledby="kill-title" aria-describedby="kill-text">
  <form method="dialog">
    <h2 id="kill-title">Turn the flag off?</h2>
    <p id="kill-text"></p>
    <label for="kill-reason">Reason (recorded in history)</label>
    <input id="kill-reason" name="reason" maxlength="500" autocomplete="off">
    <div class="dialog-actions">
      <button type="submit" value="cancel" class="secondary" autofocus>Cancel</button>
      <button type="submit" value="confirm" class="danger">Turn off</button>
    </div>
  </form>
</dialog>
</body>
</html>
`;
