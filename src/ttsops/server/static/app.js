// ttsops web page: synthesise (SSE: the audio arrives sentence by sentence and plays as it
// comes where the browser's MediaSource takes the format, with word timings), show the ids
// and timings, keep a history of this page's syntheses (replay, download), and report
// playback back to the server (POST /v1/webui/events -> webui_event records carrying the
// synthesis id), so that "the play button did nothing" is visible in the server's log.
// Every string that came from the server is shown with textContent, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const player = $("player");
  const MAX_STALLS = 5;
  let cur = null; // the synthesis on the player: ids, timings, what was reported
  const history = []; // this page's syntheses, newest last
  const MAX_HISTORY = 20;
  const MIME = { mp3: "audio/mpeg", opus: "audio/ogg", aac: "audio/aac", flac: "audio/flac",
                 wav: "audio/wav", pcm: "audio/pcm" };
  const MSE = { mp3: "audio/mpeg", aac: "audio/aac" }; // formats MediaSource may play

  const now = () => performance.now();
  const round1 = (x) => Math.round(x * 10) / 10;

  function authHeaders() {
    const key = $("apikey").value.trim();
    return key ? { Authorization: "Bearer " + key } : {};
  }

  // --- reporting to the server -----------------------------------------------------
  function clientTimings() {
    if (!cur) return {};
    const t = {};
    if (cur.tResponse) t.fetch_ms = round1(cur.tResponse - cur.t0);
    if (cur.tBody) t.download_ms = round1(cur.tBody - cur.tResponse);
    // streamed: playable before the body is complete (no load time to speak of)
    if (cur.tCanPlay && cur.tBody && cur.tCanPlay >= cur.tBody) {
      t.load_ms = round1(cur.tCanPlay - cur.tBody);
    }
    if (cur.tPlaying) t.play_ms = round1(cur.tPlaying - cur.t0);
    if (cur.onPlayer) { // never the position of another clip still on the player
      if (Number.isFinite(player.currentTime)) t.position_s = round1(player.currentTime);
      if (Number.isFinite(player.duration)) t.audio_duration_s = round1(player.duration);
    }
    return t;
  }

  function report(kind, detail) {
    const body = Object.assign({
      kind: kind,
      id: cur ? cur.id : null,
      request_id: cur ? cur.requestId : null,
      token: cur ? cur.token : null,  // X-Synthesis-Token: the server checks it (webui.py)
      detail: detail ? String(detail).slice(0, 500) : null,
      format: cur ? cur.format : null,
    }, clientTimings());
    const headers = Object.assign({ "Content-Type": "application/json" }, authHeaders());
    fetch("/v1/webui/events", {
      method: "POST", headers: headers, body: JSON.stringify(body), keepalive: true,
    }).catch(() => { /* nothing else to tell */ });
  }

  function mediaErrorText() {
    const e = player.error;
    if (!e) return "unknown media error";
    const names = { 1: "MEDIA_ERR_ABORTED", 2: "MEDIA_ERR_NETWORK", 3: "MEDIA_ERR_DECODE",
                    4: "MEDIA_ERR_SRC_NOT_SUPPORTED" };
    return (names[e.code] || "MEDIA_ERR_" + e.code) + (e.message ? ": " + e.message : "");
  }

  player.addEventListener("canplay", () => {
    if (cur && !cur.tCanPlay) cur.tCanPlay = now();
  });
  player.addEventListener("playing", () => {
    if (!cur) return;
    if (!cur.tPlaying) cur.tPlaying = now();
    if (!cur.reportedPlay) { cur.reportedPlay = true; report("play", null); }
    $("playback").textContent = "playing";
  });
  player.addEventListener("ended", () => {
    if (!cur) return;
    report("ended", null);
    $("playback").textContent = "ended";
  });
  // one error report per synthesis: a failed load also rejects play()
  function playbackError(text) {
    $("playback").textContent = "error: " + text;
    if (!cur || cur.reportedError) return;
    cur.reportedError = true;
    report("error", text);
  }

  player.addEventListener("error", () => {
    if (!cur || !cur.onPlayer || !player.getAttribute("src")) return;
    playbackError(mediaErrorText());
  });
  for (const ev of ["stalled", "waiting"]) {
    player.addEventListener(ev, () => {
      if (!cur || cur.stalls >= MAX_STALLS || !cur.tPlaying) return;
      cur.stalls += 1;
      report("stall", ev);
    });
  }

  // --- showing results ----------------------------------------------------------------
  function setText(id, text) { $(id).textContent = text == null ? "–" : String(text); }

  function parseServerTiming(header) {
    const out = [];
    if (!header) return out;
    for (const part of header.split(",")) {
      const bits = part.trim().split(";");
      const name = bits[0].trim();
      let dur = null;
      for (const b of bits.slice(1)) {
        const [k, v] = b.trim().split("=");
        if (k === "dur") dur = parseFloat(v);
      }
      if (name && dur !== null && Number.isFinite(dur)) out.push([name, dur]);
    }
    return out;
  }

  function parsePairs(header) {
    const out = [];
    if (!header) return out;
    for (const part of header.split(",")) {
      const i = part.indexOf("=");
      if (i > 0) out.push([part.slice(0, i).trim(), part.slice(i + 1).trim()]);
    }
    return out;
  }

  function fillTable(id, rows, withBars) {
    const tbody = $(id).querySelector("tbody");
    tbody.replaceChildren();
    const total = withBars ? Math.max(...rows.map((r) => (r[0] === "total" ? 0 : r[1])), 1) : 1;
    for (const [name, value] of rows) {
      const tr = document.createElement("tr");
      const a = document.createElement("td");
      a.textContent = name;
      const b = document.createElement("td");
      b.className = "num";
      b.textContent = typeof value === "number" ? value.toFixed(1) : value;
      tr.append(a, b);
      if (withBars) {
        const c = document.createElement("td");
        if (name !== "total") {
          const bar = document.createElement("span");
          bar.className = "bar";
          bar.style.width = Math.max(1, Math.round((value / total) * 160)) + "px";
          c.append(bar);
        }
        tr.append(c);
      }
      tbody.append(tr);
    }
  }

  function showError(status, code, message, requestId, id) {
    $("error").hidden = false;
    setText("err-code", code);
    setText("err-status", "HTTP " + status);
    setText("err-message", message);
    setText("err-request-id", requestId);
    setText("err-id", id);
  }

  // --- the player ------------------------------------------------------------------------
  // no audio of an earlier synthesis stays loaded once another one starts or fails
  function unload() {
    if (cur) cur.onPlayer = false;
    player.pause();
    player.removeAttribute("src");
    player.load();
    $("download").hidden = true;
    $("words").replaceChildren();
  }

  function b64bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function startPlay(clip) {
    player.play().catch(async (err) => {
      // the media error (if any) is reported first; this adds autoplay refusals etc.
      await new Promise((r) => setTimeout(r, 0));
      if (cur !== clip) return;
      playbackError(mediaErrorText() !== "unknown media error" ? mediaErrorText()
        : "play() rejected: " + (err && err.name) + ": " + (err && err.message));
    });
  }

  // Audio as it arrives: through MediaSource where the browser takes the format (play on
  // the first piece), else the whole file once it is there. push(bytes), end(blobUrl).
  function streamingSink(clip) {
    const type = MSE[clip.format];
    if (!type || !window.MediaSource || !MediaSource.isTypeSupported(type)) {
      return {
        live: false,
        push() {},
        end(url) { player.src = url; clip.onPlayer = true; startPlay(clip); },
      };
    }
    const ms = new MediaSource();
    const queue = [];
    let sb = null;
    let ended = false;
    let started = false;
    const pump = () => {
      if (!sb || sb.updating || ms.readyState !== "open") return;
      if (queue.length) {
        try { sb.appendBuffer(queue.shift()); } catch (err) {
          playbackError(mediaErrorText() !== "unknown media error" ? mediaErrorText()
            : "MediaSource: " + err.name + ": " + err.message);
        }
      } else if (ended) {
        try { ms.endOfStream(); } catch (_) { /* closed after an error */ }
      }
    };
    ms.addEventListener("sourceopen", () => {
      sb = ms.addSourceBuffer(type);
      sb.addEventListener("updateend", () => {
        if (!started && cur === clip) { started = true; startPlay(clip); }
        pump();
      });
      pump();
    }, { once: true });
    player.src = URL.createObjectURL(ms);
    clip.onPlayer = true;
    return {
      live: true,
      push(bytes) { queue.push(bytes); pump(); },
      end() { ended = true; pump(); },
    };
  }

  // --- words ------------------------------------------------------------------------------
  function addWord(clip, w) {
    clip.words.push(w);
    if (cur !== clip) return;
    const box = $("words");
    const prev = box.lastChild ? box.lastChild.textContent : "";
    const span = document.createElement("span");
    const spaced = /[A-Za-z0-9]$/.test(prev) && /^[A-Za-z0-9]/.test(w.word);
    span.textContent = (spaced ? " " : "") + w.word;
    box.append(span);
  }

  function showWords(clip) {
    $("words").replaceChildren();
    const words = clip.words;
    clip.words = [];
    for (const w of words) addWord(clip, w);
  }

  let lit = -1;
  function highlight() {
    if (!cur || !cur.onPlayer || !cur.words.length) return;
    const t = player.currentTime * 1000;
    let k = -1;
    for (let i = 0; i < cur.words.length && cur.words[i].start_ms <= t; i++) k = i;
    if (k >= 0 && t > cur.words[k].end_ms + 150) k = -1; // in a pause
    if (k === lit) return;
    const spans = $("words").children;
    if (lit >= 0 && spans[lit]) spans[lit].classList.remove("now");
    if (k >= 0 && spans[k]) spans[k].classList.add("now");
    lit = k;
  }
  const tick = () => { highlight(); if (!player.paused) requestAnimationFrame(tick); };
  player.addEventListener("playing", () => requestAnimationFrame(tick));
  player.addEventListener("timeupdate", highlight);

  // --- results and history ------------------------------------------------------------------
  function stageRows(done) {
    const rows = [["queue", done.queue_ms]];
    for (const [k, v] of Object.entries(done.stages || {})) rows.push([k, v]);
    rows.push(["total", done.total_ms]);
    return rows;
  }

  function fileName(clip) {
    return "ttsops-" + (clip.id || "audio") + "." + clip.format;
  }

  function showDownload(clip) {
    const a = $("download");
    a.href = clip.url;
    a.download = fileName(clip);
    a.hidden = false;
  }

  function replay(clip) {
    unload();
    cur = clip;
    // a new playback of the same synthesis: its beacons time this click, not the fetch
    Object.assign(clip, { t0: now(), tResponse: 0, tBody: 0, tCanPlay: 0, tPlaying: 0,
                          stalls: 0, reportedPlay: false, reportedError: false });
    player.src = clip.url;
    clip.onPlayer = true;
    lit = -1;
    showWords(clip);
    showDownload(clip);
    $("playback").textContent = "replay of " + clip.id;
    startPlay(clip);
  }

  function addHistory(clip) {
    history.push(clip);
    while (history.length > MAX_HISTORY) {
      const old = history.shift();
      if (old !== cur && old.url) URL.revokeObjectURL(old.url);
    }
    const list = $("history");
    list.replaceChildren();
    for (const h of history.slice().reverse()) {
      const li = document.createElement("li");
      const id = document.createElement("code");
      id.textContent = h.id;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = " " + (h.text.length > 60 ? h.text.slice(0, 60) + "…" : h.text);
      const stages = document.createElement("div");
      stages.className = "muted";
      stages.textContent = h.format + ", " + (h.size / 1024).toFixed(1) + " KiB, " +
        stageRows(h.done).map(([k, v]) => k + " " + Number(v).toFixed(1)).join(" · ") + " ms";
      const again = document.createElement("button");
      again.type = "button";
      again.className = "replay";
      again.textContent = "▶ replay";
      again.addEventListener("click", () => replay(h));
      const dl = document.createElement("a");
      dl.href = h.url;
      dl.download = fileName(h);
      dl.textContent = "⬇ " + fileName(h);
      const tools = document.createElement("div");
      tools.append(again, dl);
      li.append(id, text, stages, tools);
      list.append(li);
    }
    $("history-section").hidden = false;
  }

  // Server-sent events of a response body: calls on(event) for each "data:" JSON object.
  async function readEvents(resp, on) {
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of block.split("\n")) {
          if (!line.startsWith("data:")) continue;
          let ev = null;
          try { ev = JSON.parse(line.slice(5)); } catch (_) { /* not an event */ }
          if (ev) on(ev);
        }
      }
      if (done) return;
    }
  }

  // --- synthesising ---------------------------------------------------------------------
  async function synthesise(ev) {
    ev.preventDefault();
    const button = $("synth");
    button.disabled = true;
    $("busy").hidden = false;
    $("error").hidden = true;
    const format = $("format").value;
    const body = {
      model: "tts-1",
      input: $("text").value,
      voice: $("voice").value,
      response_format: format,
      speed: parseFloat($("speed").value),
      stream_format: "sse",
      timestamps: $("timestamps").checked,
    };
    if ($("lang").value) body.lang = $("lang").value;
    const next = { id: null, requestId: null, format: format, t0: now(), tResponse: 0,
                   tBody: 0, tCanPlay: 0, tPlaying: 0, stalls: 0, reportedPlay: false,
                   reportedError: false, onPlayer: false, text: body.input, words: [],
                   chunks: [], done: null, failure: null, url: null, size: 0 };
    unload(); // the previous clip's audio goes now, whatever happens to this one
    lit = -1;
    try {
      const headers = Object.assign({ "Content-Type": "application/json" }, authHeaders());
      const resp = await fetch("/v1/audio/speech", {
        method: "POST", headers: headers, body: JSON.stringify(body),
      });
      next.tResponse = now();
      next.id = resp.headers.get("X-Synthesis-ID");
      next.requestId = resp.headers.get("X-Request-ID");
      next.token = resp.headers.get("X-Synthesis-Token");
      cur = next;
      if (!resp.ok) {
        let code = "HTTP_" + resp.status;
        let message = resp.statusText;
        try {
          const j = await resp.json();
          if (j && j.error) { code = j.error.code || code; message = j.error.message || message; }
        } catch (_) { /* not JSON */ }
        $("result").hidden = true;
        showError(resp.status, code, message, next.requestId, next.id);
        report("request_failed", "HTTP " + resp.status + " " + code);
        return;
      }
      $("result").hidden = false;
      setText("res-id", next.id);
      setText("res-request-id", next.requestId);
      setText("res-status", resp.status + " " + (resp.statusText || "OK") + " (streaming)");
      setText("res-cache", "–");
      setText("res-size", "–");
      fillTable("stages", [], true);
      fillTable("metrics", [], false);
      $("playback").textContent = "loading";
      const sink = streamingSink(next);
      await readEvents(resp, (e) => {
        if (e.type === "speech.audio.delta") {
          const bytes = b64bytes(e.audio);
          next.chunks.push(bytes);
          sink.push(bytes);
        } else if (e.type === "speech.audio.word") {
          addWord(next, e);
        } else if (e.type === "speech.audio.done") {
          next.done = e;
        } else if (e.type === "error") {
          next.failure = e.error || { code: "INTERNAL_ERROR", message: "stream failed" };
        }
      });
      next.tBody = now();
      if (!next.done) {
        const f = next.failure || { code: "STREAM_CUT", message: "the stream ended early" };
        if (cur === next) unload();
        $("result").hidden = true;
        showError(resp.status, f.code, f.message, next.requestId, next.id);
        report("request_failed", "stream: " + f.code);
        return;
      }
      const blob = new Blob(next.chunks, { type: MIME[format] || "application/octet-stream" });
      next.chunks = [];
      next.size = blob.size;
      next.url = URL.createObjectURL(blob);
      const d = next.done;
      setText("res-status", resp.status + " " + (resp.statusText || "OK"));
      setText("res-cache", String(d.cache_hit));
      setText("res-size", (blob.size / 1024).toFixed(1) + " KiB, " + blob.type);
      fillTable("stages", stageRows(d), true);
      fillTable("metrics", Object.entries(d.metrics || {}).map(([k, v]) => [k, String(v)]),
                false);
      addHistory(next);
      if (cur === next) {
        showDownload(next);
        sink.end(next.url);
      }
    } catch (err) {
      next.tResponse = next.tResponse || now();
      cur = next;
      unload();
      showError(0, "NETWORK_ERROR", String(err), next.requestId, next.id);
      report("request_failed", "fetch failed: " + String(err));
    } finally {
      button.disabled = false;
      $("busy").hidden = true;
    }
  }

  async function loadVoices() {
    try {
      const resp = await fetch("/v1/audio/voices", { headers: authHeaders() });
      if (!resp.ok) return;
      const j = await resp.json();
      const sel = $("voice");
      const keep = sel.value;
      sel.replaceChildren();
      for (const v of j.data || []) {
        const o = document.createElement("option");
        o.value = v.id;
        o.textContent = v.id + (v.languages && v.languages.length ? " (" + v.languages.join(", ") + ")" : "");
        sel.append(o);
      }
      if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
    } catch (_) { /* keep the default voice */ }
  }

  $("speed").addEventListener("input", () => {
    $("speed-out").textContent = parseFloat($("speed").value).toFixed(2);
  });
  $("apikey").value = sessionStorage.getItem("ttsops_api_key") || "";
  $("apikey").addEventListener("change", () => {
    sessionStorage.setItem("ttsops_api_key", $("apikey").value.trim());
    loadVoices();
  });
  $("form").addEventListener("submit", synthesise);
  loadVoices();
})();
