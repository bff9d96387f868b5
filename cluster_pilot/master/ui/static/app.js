// cluster-pilot dashboard: swap in a fresh board every second; follow a pod's log as it streams.
"use strict";
(function () {
  const board = document.getElementById("board");
  if (board) {
    const refresh = async () => {
      try {
        const answer = await fetch(board.dataset.refresh, {credentials: "same-origin", cache: "no-store"});
        if (answer.status === 401) { window.location.reload(); return; }
        if (answer.ok) board.innerHTML = await answer.text();
      } catch (e) { /* the master is restarting: try again next tick */ }
      setTimeout(refresh, 1000);
    };
    setTimeout(refresh, 1000);
  }
  const log = document.getElementById("log");
  if (log) {
    (async () => {
      const answer = await fetch(log.dataset.src, {credentials: "same-origin"});
      const reader = answer.body.getReader();
      const text = new TextDecoder();
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        log.append(text.decode(value, {stream: true}));
        window.scrollTo(0, document.body.scrollHeight);
      }
    })();
  }
})();
