// StyleForge Studio page: reads the controls, asks the server for the image, shows it.
// Plain JavaScript, no build step. `window.Studio` exposes the pure helpers and the page state for tests.
"use strict";

const Studio = (() => {
  const SEED_LIMIT = 4294967296; // seeds are in [0, 2^32)
  const DOT_RADIUS = [0.04, 0.03, 0.022]; // per heatmap level, in fractions of the image side
  const $ = (id) => document.getElementById(id);

  // ---- pure helpers -------------------------------------------------------------------------------

  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

  // Heatmap coordinates put pixel i of R at 2i/(R-1) - 1, so -1 and 1 are the centres of the first and last
  // pixels. These map a coordinate to its place across the displayed image (0 = left edge, 1 = right edge)
  // and back.
  function centreToFraction(c, R) {
    return ((c + 1) * (R - 1) / 2 + 0.5) / R;
  }

  function fractionToCentre(f, R) {
    return clamp((2 * (f * R - 0.5)) / (R - 1) - 1, -1, 1);
  }

  // A copy of `heatmaps` with centre `index` of `level` (0-based) at (y, x). The level-1 centre is the
  // object: its parts (levels 2 and 3) move along with it.
  function moveCentre(heatmaps, level, index, y, x) {
    const out = JSON.parse(JSON.stringify(heatmaps));
    const [oldY, oldX] = out.centres[level][index];
    out.centres[level][index] = [clamp(y, -1, 1), clamp(x, -1, 1)];
    if (level === 0) {
      const dy = y - oldY, dx = x - oldX;
      for (let l = 1; l < out.centres.length; l++) {
        out.centres[l] = out.centres[l].map(([py, px]) => [clamp(py + dy, -1, 1), clamp(px + dx, -1, 1)]);
      }
    }
    return out;
  }

  // ---- page state ---------------------------------------------------------------------------------

  const state = {
    info: null, // the network's description from /api/info
    heatmaps: null, // the centres shown (from the last render, or dragged)
    heatmapsSet: false, // true once the user dragged a centre: then they are sent with every request
    dirty: false, // the controls changed since the last request was sent
    inFlight: false,
    renders: 0, // finished renders (tests wait on this)
    lastError: null,
    lastResponse: null,
    lastSave: null, // the answer to the last save
  };

  function readSeed(id) {
    const value = Number($(id).value);
    return Number.isInteger(value) ? value : $(id).value; // a non-integer goes to the server, which says why
  }

  function settingsFromControls() {
    const settings = {
      seed: readSeed("seed"),
      psi: Number($("psi").value),
      cutoff: $("cutoff").value === "" ? null : Number($("cutoff").value),
      class: state.info.c_dim > 0 ? Number($("class").value) : null,
      noise_mode: $("noise-mode").value,
      mix: null,
      interp: null,
      heatmaps: null,
    };
    if ($("mix-on").checked) {
      settings.mix = { seed: readSeed("mix-seed"), layers: [Number($("mix-first").value), Number($("mix-last").value)] };
    }
    if ($("interp-on").checked) {
      const space = document.querySelector('input[name="space"]:checked').value;
      settings.interp = { seed: readSeed("interp-seed"), t: Number($("interp-t").value), space };
    }
    if (state.info.spatial && state.heatmapsSet && state.heatmaps) settings.heatmaps = state.heatmaps;
    return settings;
  }

  // ---- talking to the server ----------------------------------------------------------------------

  async function call(path, body) {
    const options = body === undefined ? {} :
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    let response;
    try {
      response = await fetch(path, options);
    } catch (e) {
      throw new Error(`the studio server does not answer (${e.message}); is \`styleforge studio\` still running?`);
    }
    let data;
    try {
      data = await response.json();
    } catch (e) {
      throw new Error(`the server sent HTTP ${response.status} without a readable answer`);
    }
    if (!response.ok) {
      const error = new Error(data.error || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function showError(title, message, canReload) {
    state.lastError = message;
    $("error-title").textContent = title;
    $("error-message").textContent = message;
    $("reload").hidden = !canReload;
    $("error").hidden = false;
  }

  function clearError() {
    state.lastError = null;
    $("error").hidden = true;
  }

  // Only one render request is in flight; changes made meanwhile are sent together when it returns, so a
  // dragged slider never builds a queue.
  function requestRender() {
    state.dirty = true;
    if (!state.inFlight) pump();
  }

  async function pump() {
    state.inFlight = true;
    $("stage").classList.add("busy");
    while (state.dirty) {
      state.dirty = false;
      const started = performance.now();
      try {
        const result = await call("/api/render", settingsFromControls());
        showResult(result, performance.now() - started);
        clearError();
      } catch (e) {
        showError(e.status === 503 ? "The network is not loaded" : "The image could not be drawn", e.message,
                  e.status === 503);
      }
      state.renders += 1;
    }
    state.inFlight = false;
    $("stage").classList.remove("busy");
  }

  function showResult(result, roundTripMs) {
    state.lastResponse = result;
    $("image").src = result.image;
    if (state.info.spatial && !state.heatmapsSet) state.heatmaps = result.settings.heatmaps;
    drawCentres();
    const strip = $("scale-strip");
    strip.replaceChildren(...result.scales.map((url, i) => {
      const size = state.info.resolution >> (result.scales.length - 1 - i);
      const figure = document.createElement("div");
      figure.className = "scale";
      const img = document.createElement("img");
      img.src = url;
      img.alt = `${size}x${size}`;
      figure.append(img, `${size}\u00d7${size}`);
      return figure;
    }));
    $("scales").hidden = result.scales.length === 0;
    const t = result.timing;
    $("timing").textContent = `server: render ${t.render_ms.toFixed(1)} ms + PNG ${t.encode_ms.toFixed(1)} ms` +
      ` \u00b7 round trip ${roundTripMs.toFixed(1)} ms`;
  }

  // ---- heatmap centres --------------------------------------------------------------------------

  function drawCentres() {
    const svg = $("overlay");
    const visible = Boolean(state.info.spatial && state.heatmaps && $("show-centres").checked);
    svg.toggleAttribute("hidden", !visible); // an SVG element has no `hidden` property, only the attribute
    if (!visible) return;
    const R = state.info.resolution;
    const centres = state.heatmaps.centres;
    if (svg.childElementCount !== centres.flat().length) makeDots(svg, centres);
    // The dots are kept (a dragged one must stay under the pointer); only their places change.
    for (const dot of svg.children) {
      const [y, x] = centres[Number(dot.dataset.level)][Number(dot.dataset.index)];
      dot.setAttribute("cx", centreToFraction(x, R));
      dot.setAttribute("cy", centreToFraction(y, R));
    }
  }

  function makeDots(svg, centres) {
    const dots = [];
    // Finest level first, so the object's dot is drawn on top.
    for (let level = centres.length - 1; level >= 0; level--) {
      centres[level].forEach((_, index) => {
        const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
        dot.setAttribute("r", DOT_RADIUS[Math.min(level, DOT_RADIUS.length - 1)]);
        dot.setAttribute("class", `level-${level + 1}`);
        dot.dataset.level = level;
        dot.dataset.index = index;
        dot.addEventListener("pointerdown", startDrag);
        const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
        title.textContent = `level ${level + 1} centre ${index + 1}`;
        dot.append(title);
        dots.push(dot);
      });
    }
    svg.replaceChildren(...dots);
  }

  function startDrag(event) {
    event.preventDefault();
    const dot = event.currentTarget;
    const level = Number(dot.dataset.level), index = Number(dot.dataset.index);
    const svg = $("overlay");
    const R = state.info.resolution;
    dot.classList.add("dragging");
    const move = (e) => {
      const box = svg.getBoundingClientRect();
      const x = fractionToCentre((e.clientX - box.left) / box.width, R);
      const y = fractionToCentre((e.clientY - box.top) / box.height, R);
      state.heatmaps = moveCentre(state.heatmaps, level, index, y, x);
      state.heatmapsSet = true;
      drawCentres();
      requestRender();
    };
    const stop = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", stop);
      dot.classList.remove("dragging");
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", stop);
  }

  // ---- controls ---------------------------------------------------------------------------------

  function setSeed(id, value) {
    $(id).value = ((value % SEED_LIMIT) + SEED_LIMIT) % SEED_LIMIT;
    seedChanged();
  }

  function seedChanged() {
    state.heatmapsSet = false; // a new seed starts from its own centres
    requestRender();
  }

  function showRanges() {
    $("psi-value").textContent = Number($("psi").value).toFixed(2);
    $("interp-t-value").textContent = Number($("interp-t").value).toFixed(2);
    $("mix-first-value").textContent = $("mix-first").value;
    $("mix-last-value").textContent = $("mix-last").value;
  }

  function setUpControls(info) {
    $("cutoff").replaceChildren(new Option("all", ""),
      ...Array.from({ length: info.num_ws }, (_, i) => new Option(`first ${i + 1}`, String(i + 1))));
    $("class-row").hidden = info.c_dim === 0;
    $("class").replaceChildren(...Array.from({ length: info.c_dim }, (_, i) => new Option(String(i), String(i))));
    for (const id of ["mix-first", "mix-last"]) $(id).max = info.num_ws - 1;
    $("mix-first").value = 0;
    $("mix-last").value = Math.min(3, info.num_ws - 1);
    $("psi").disabled = !info.truncation;
    $("cutoff").disabled = !info.truncation;
    $("heatmap-controls").hidden = !info.spatial;
    $("image").classList.toggle("pixelated", info.resolution < 256);
    showRanges();

    $("seed").addEventListener("input", seedChanged);
    $("seed-prev").addEventListener("click", () => setSeed("seed", Number($("seed").value) - 1));
    $("seed-next").addEventListener("click", () => setSeed("seed", Number($("seed").value) + 1));
    $("seed-random").addEventListener("click", () => setSeed("seed", Math.floor(Math.random() * SEED_LIMIT)));
    // Keep the mixed layer range ordered whichever end is dragged.
    $("mix-first").addEventListener("input", () => {
      if (Number($("mix-first").value) > Number($("mix-last").value)) $("mix-last").value = $("mix-first").value;
    });
    $("mix-last").addEventListener("input", () => {
      if (Number($("mix-last").value) < Number($("mix-first").value)) $("mix-first").value = $("mix-last").value;
    });
    $("controls").addEventListener("input", (e) => {
      showRanges();
      if (e.target.id !== "seed" && e.target.id !== "show-centres") requestRender();
    });
    $("show-centres").addEventListener("change", drawCentres);
    $("reset-centres").addEventListener("click", () => { state.heatmapsSet = false; requestRender(); });
    $("save").addEventListener("click", save);
  }

  async function save() {
    try {
      const saved = await call("/api/save", settingsFromControls());
      $("saved-files").textContent = `${saved.image_file} and ${saved.settings_file}`;
      $("saved-command").textContent = saved.command;
      $("saved").hidden = false;
      state.lastSave = saved;
      clearError();
    } catch (e) {
      showError("The image could not be saved", e.message, e.status === 503);
    }
  }

  function describeNetwork(data) {
    const info = data.info;
    const abilities = [info.c_dim ? `${info.c_dim} classes` : "unconditional", `${info.num_ws} ws`];
    if (info.spatial) abilities.push("EqGAN-SA heatmaps");
    if (info.multiscale) abilities.push("MSG every scale");
    $("network-line").textContent = `${data.network} \u00b7 ${info.name} \u00b7 ${info.resolution}\u00d7` +
      `${info.resolution}\u00d7${info.channels} \u00b7 ${abilities.join(", ")} \u00b7 ${data.device}`;
  }

  async function start() {
    $("reload").addEventListener("click", async () => {
      try {
        await call("/api/reload", {});
        window.location.reload();
      } catch (e) {
        showError("The network could not be loaded", e.message, true);
      }
    });
    let data;
    try {
      data = await call("/api/info");
    } catch (e) {
      $("network-line").textContent = "no network";
      showError("The network could not be loaded", e.message, e.status === 503);
      state.renders += 1;
      return;
    }
    state.info = data.info;
    describeNetwork(data);
    setUpControls(data.info);
    $("workspace").hidden = false;
    requestRender();
  }

  return { centreToFraction, fractionToCentre, moveCentre, settingsFromControls, requestRender, state, start };
})();

window.Studio = Studio;
document.addEventListener("DOMContentLoaded", Studio.start);
