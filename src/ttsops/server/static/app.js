// ttsops web page: synthesise, play, show the ids and timings, and report playback back to
// the server (POST /v1/webui/events -> webui_event records carrying the synthesis id), so
// that "the play button did nothing" is visible in the server's log.
// Every string that came from the server is shown with textContent, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const player = $("player");
  const MAX_STALLS = 5;
  let cur = null; // the synthesis on the player: ids, timings, what was reported

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
    if (cur.tCanPlay) t.load_ms = round1(cur.tCanPlay - cur.tBody);
    if (cur.tPlaying) t.play_ms = round1(cur.tPlaying - cur.t0);
    if (Number.isFinite(player.currentTime)) t.position_s = round1(player.currentTime);
    if (Number.isFinite(player.duration)) t.audio_duration_s = round1(player.duration);
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
    if (!cur || !player.getAttribute("src")) return;
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
    };
    if ($("lang").value) body.lang = $("lang").value;
    const next = { id: null, requestId: null, format: format, t0: now(), tResponse: 0,
                   tBody: 0, tCanPlay: 0, tPlaying: 0, stalls: 0, reportedPlay: false,
                   reportedError: false };
    try {
      const headers = Object.assign({ "Content-Type": "application/json" }, authHeaders());
      const resp = await fetch("/v1/audio/speech", {
        method: "POST", headers: headers, body: JSON.stringify(body),
      });
      next.tResponse = now();
      next.id = resp.headers.get("X-Synthesis-ID");
      next.requestId = resp.headers.get("X-Request-ID");
      next.token = resp.headers.get("X-Synthesis-Token");
      if (!resp.ok) {
        let code = "HTTP_" + resp.status;
        let message = resp.statusText;
        try {
          const j = await resp.json();
          if (j && j.error) { code = j.error.code || code; message = j.error.message || message; }
        } catch (_) { /* not JSON */ }
        $("result").hidden = true;
        showError(resp.status, code, message, next.requestId, next.id);
        cur = next;
        report("request_failed", "HTTP " + resp.status + " " + code);
        return;
      }
      const blob = await resp.blob();
      next.tBody = now();
      cur = next;
      $("result").hidden = false;
      setText("res-id", next.id);
      setText("res-request-id", next.requestId);
      setText("res-status", resp.status + " " + (resp.statusText || "OK"));
      setText("res-cache", resp.headers.get("X-Cache-Hit"));
      setText("res-size", (blob.size / 1024).toFixed(1) + " KiB, " + blob.type);
      fillTable("stages", parseServerTiming(resp.headers.get("Server-Timing")), true);
      fillTable("metrics", parsePairs(resp.headers.get("X-Audio-Metrics")), false);
      $("playback").textContent = "loading";
      const old = player.getAttribute("src");
      player.src = URL.createObjectURL(blob);
      if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
      try {
        await player.play();
      } catch (err) {
        // the media error (if any) is reported first; this adds autoplay refusals etc.
        await new Promise((r) => setTimeout(r, 0));
        playbackError(mediaErrorText() !== "unknown media error" ? mediaErrorText()
          : "play() rejected: " + (err && err.name) + ": " + (err && err.message));
      }
    } catch (err) {
      next.tResponse = next.tResponse || now();
      cur = next;
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
