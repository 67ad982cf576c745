// The page of gridcnn serve: send a file, a recording, a snapshot, a drawing or a sentence to /predict; show what
// the model saw with where it looked (Grad-CAM, or each token's weight), the classes as bars (click one to see
// where the network looked for it), and the feature maps of each block. Plain DOM and canvas, no library.
import { decodeSound, setUpCamera, setUpDrawing, setUpRecording } from "/static/media.js";
import { featureMaps, gridCanvas, overlay, tokenView, waveformCanvas } from "/static/views.js";

const $ = (id) => document.getElementById(id);
const SHOWN = 10;  // bars: every class of a small model, the ten most probable of a larger one
let model = null;
let current = null;  // the input on show: how to send it again, and what the page drew of it

async function start() {
  model = await (await fetch("/model")).json();
  const kind = model.input_kind;
  document.title = `${model.name} · gridcnn`;
  $("name").textContent = model.name;
  const n = model.classes.length;
  const classes = model.classes.slice(0, 12).join(", ") + (n > 12 ? `, … (${n - 12} more)` : "");
  const input = { image: "pictures", spectrogram: "sounds", embedding: "texts" }[kind] || "grids";
  let about = `${n} classes: ${classes}. Reads ${input}`;
  if (kind === "image") about += ` as ${model.image_size.join(" × ")} ${model.image_mode === "L" ? "gray" : "colour"}`;
  if (kind === "spectrogram") about += ` of ${model.duration_s.toFixed(2)} s at ${model.sample_rate} Hz`;
  $("about").textContent = `${about}; grid ${model.grid_shape.join(" × ")}.`;
  if (model.metrics && model.metrics.accuracy !== undefined) {
    $("accuracy").textContent = `Test accuracy ${(100 * model.metrics.accuracy).toFixed(2)}% ` +
      `on ${model.metrics.n_samples} held-out samples`;
    $("accuracy").hidden = false;
  }
  if (kind === "image" || kind === "spectrogram") {
    $("drop").hidden = false;
    $("file").accept = kind === "image" ? "image/*" : "audio/*,.wav,.flac,.ogg,.mp3";
  }
  if (kind === "image") {
    setUpCamera(model, sendFile);
    // Strokes make sense to grayscale models of small pictures (digits, letters, sketches), not to photo models.
    if (model.image_mode === "L" && Math.max(...model.image_size) <= 64) setUpDrawing(model, sendFile);
  }
  if (kind === "spectrogram") setUpRecording(model, sendFile);
  if (kind === "embedding") $("write").hidden = false;
  if (!["image", "spectrogram", "embedding"].includes(kind)) {
    $("about").textContent += ` This model takes grids: POST JSON {"inputs": [...]} to /predict.`;
  }
}

async function post(query, body) {
  const response = await fetch(`/predict?${query}`, body());
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `The server answered ${response.status}.`);
  return answer;
}

function showError(e) {
  $("error").textContent = e.message || String(e);
  $("error").hidden = false;
}

async function send(body, source, media = {}) {
  $("error").hidden = true;
  let answer;
  try {
    answer = await post("feature_maps=true&explain=true", body);
  } catch (e) {
    showError(e);
    return;
  }
  current = { body, source, media, stages: answer.feature_maps || [] };
  showPrediction(answer.predictions[0]);
  showSeen(answer.explanations[0]);
  featureMaps($("maps"), current.stages, model.input_kind === "spectrogram");
  $("maps-note").textContent = model.input_kind === "spectrogram"
    ? "The spectrogram the network read (time across, low frequencies at the bottom), then what each block makes " +
      "of it (its first maps; bright = high)."
    : "The input grid, then what each convolutional block makes of it (its first maps; bright = high).";
  $("maps-panel").hidden = current.stages.length === 0;
}

async function sendFile(file, name) {
  name = name || file.name;
  const body = () => {
    const form = new FormData();
    form.append("files", file, name);
    return { method: "POST", body: form };
  };
  const media = { url: URL.createObjectURL(file) };
  if (model.input_kind === "spectrogram") {
    try {
      media.samples = await decodeSound(file, model.sample_rate);
    } catch (e) {
      media.samples = null;  // the server may still read it (or say why not); the page only loses the waveform
    }
  }
  return send(body, name, media);
}

async function explainClass(label) {
  if (!current) return;
  $("error").hidden = true;
  try {
    const answer = await post(`explain=true&target=${encodeURIComponent(label)}`, current.body);
    showSeen(answer.explanations[0]);
  } catch (e) {
    showError(e);
  }
}

function showPrediction(prediction) {
  $("label").textContent = prediction.label;
  const probabilities = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  $("top-p").textContent = `${(100 * probabilities[0][1]).toFixed(1)}%`;
  $("source").textContent = `(${current.source})`;
  const bars = $("bars");
  bars.replaceChildren();
  probabilities.slice(0, SHOWN).forEach(([name, p], i) => {
    const row = document.createElement("button");
    row.type = "button";
    row.className = i === 0 ? "bar top" : "bar";
    row.dataset.label = name;
    row.setAttribute("role", "listitem");
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span>` +
      `<span class="value"></span>`;
    row.querySelector(".name").textContent = name;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    row.title = `Where did the network look for ${name}?`;
    row.addEventListener("click", () => explainClass(name));
    bars.appendChild(row);
  });
  $("result").hidden = false;
}

function showSeen(explanation) {
  const kind = model.input_kind;
  const view = $("view");
  view.replaceChildren();
  for (const bar of document.querySelectorAll("#bars .bar")) {
    bar.classList.toggle("explained", bar.dataset.label === String(explanation.class));
  }
  const layers = explanation.layers.join(", ");
  if (kind === "embedding") {
    view.appendChild(tokenView(explanation));
    $("why").textContent = `Each token's weight for “${explanation.class}” (gradient × input over ${layers}): ` +
      "green speaks for it, red against it.";
    return;
  }
  const sound = kind === "spectrogram";
  if (sound) {
    const player = document.createElement("audio");
    player.controls = true;
    player.src = current.media.url;
    view.appendChild(player);
    if (current.media.samples) view.appendChild(waveformCanvas(current.media.samples, model.sample_rate));
  }
  // What the network read, and beside it the same with the heatmap over it (side by side: the heatmap would hide
  // a small picture or a quiet spectrogram if it were the only view).
  const pair = document.createElement("div");
  pair.className = sound ? "pair stacked" : "pair";
  const figure = (content, caption) => {
    const f = document.createElement("figure");
    const c = document.createElement("figcaption");
    c.textContent = caption;
    f.append(content, c);
    pair.appendChild(f);
  };
  figure(seenBase(kind, sound), sound ? "spectrogram: time →, frequency ↑" : "the input");
  figure(overlay(seenBase(kind, sound), explanation, sound), `where it looked for “${explanation.class}”`);
  view.appendChild(pair);
  $("why").textContent = explanation.evidence
    ? `Grad-CAM on ${layers}: the more red, the more that part speaks for “${explanation.class}”.`
    : `Nothing in this input speaks for “${explanation.class}”: Grad-CAM finds no positive evidence (the ` +
      "network decided by what is absent, or finds the class unlikely).";
}

// The picture as uploaded, or the grid as the network read it (a sound's spectrogram, a grid sent as JSON).
function seenBase(kind, sound) {
  if (kind === "image" && current.media.url) {
    const img = document.createElement("img");
    img.src = current.media.url;
    img.alt = current.source;
    img.addEventListener("load", () => {
      if (img.naturalWidth < 128) img.classList.add("small");  // a few pixels: show them as squares, not a blur
    });
    return img;
  }
  const input = current.stages[0];
  const base = gridCanvas(input.maps[0], input.shape[1], input.shape[2], { scale: sound ? "magma" : "viridis",
                                                                         timeAcross: sound });
  base.className = sound ? "spectrogram" : "grid";
  return base;
}

$("file").addEventListener("change", () => { if ($("file").files.length) sendFile($("file").files[0]); });
const zone = $("dropzone");
zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("over");
  if (e.dataTransfer.files.length) sendFile(e.dataTransfer.files[0]);
});
$("classify-text").addEventListener("click", () => {
  const text = $("sentence").value;
  const body = () => ({ method: "POST", headers: { "Content-Type": "application/json" },
                        body: JSON.stringify({ inputs: [text] }) });
  send(body, `“${text.length > 40 ? text.slice(0, 40) + "…" : text}”`);
});
start().catch((e) => { $("about").textContent = `Could not read /model: ${e}`; });
