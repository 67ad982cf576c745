// The page of gridcnn serve: send a file, a drawing or a sentence to /predict, show the top-5 classes as bars and
// the feature maps of each block. Plain DOM and canvas, no library, so the app serves everything it needs.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;

async function start() {
  const response = await fetch("/model");
  model = await response.json();
  const kind = model.input_kind;
  const shape = model.grid_shape.join(" × ");
  let about = `${model.classes.length} classes (${model.classes.slice(0, 10).join(", ")}` +
    `${model.classes.length > 10 ? ", …" : ""}); grids ${shape}; input: ${kind}.`;
  if (model.metrics && model.metrics.accuracy !== undefined) {
    about += ` Test accuracy ${(100 * model.metrics.accuracy).toFixed(2)}% on ${model.metrics.n_samples} samples.`;
  }
  $("about").textContent = about;
  if (kind === "image" || kind === "spectrogram") {
    $("drop").hidden = false;
    $("file").accept = kind === "image" ? "image/*" : "audio/*,.wav,.flac,.ogg,.mp3";
  }
  if (kind === "image") setUpDrawing();
  if (kind === "embedding") $("write").hidden = false;
  if (!["image", "spectrogram", "embedding"].includes(kind)) {
    $("about").textContent += ` This model takes grids: POST JSON {"inputs": [...]} to /predict.`;
  }
}

async function send(body, source) {
  $("error").hidden = true;
  const response = await fetch("/predict?feature_maps=true", body);
  const answer = await response.json();
  if (!response.ok) {
    $("error").textContent = answer.error || `The server answered ${response.status}.`;
    $("error").hidden = false;
    return;
  }
  showPrediction(answer.predictions[0], source);
  showFeatureMaps(answer.feature_maps || []);
}

function sendFile(file, name) {
  const form = new FormData();
  form.append("files", file, name || file.name);
  return send({ method: "POST", body: form }, name || file.name);
}

function showPrediction(prediction, source) {
  $("label").textContent = prediction.label;
  $("source").textContent = `for ${source}`;
  const top = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]).slice(0, 5);
  const bars = $("bars");
  bars.replaceChildren();
  for (const [name, p] of top) {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span>` +
      `<span class="value"></span>`;
    row.querySelector(".name").textContent = name;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".fill").style.display = "block";
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    bars.appendChild(row);
  }
  $("result").hidden = false;
}

// viridis at five stops, interpolated: the colour scale of matplotlib's feature-map plots.
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(v) {
  const x = (v / 255) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
  const t = x - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + t * (VIRIDIS[i + 1][k] - c)));
}

function showFeatureMaps(stages) {
  const holder = $("maps");
  holder.replaceChildren();
  for (const stage of stages) {
    const [, h, w] = stage.shape;
    const box = document.createElement("div");
    box.className = "stage";
    const title = document.createElement("h3");
    const shown = stage.shape[0] < stage.channels ? ` (the first ${stage.shape[0]})` : "";
    title.textContent = `${stage.name}: ${stage.channels} map${stage.channels > 1 ? "s" : ""} of ${h} × ${w}${shown}`;
    const row = document.createElement("div");
    row.className = "row";
    const zoom = Math.max(1, Math.floor(96 / Math.max(h, w)));
    for (const values of stage.maps) {
      const canvas = document.createElement("canvas");
      canvas.width = w;
      canvas.height = h;
      canvas.style.width = `${Math.max(w * zoom, 24)}px`;
      canvas.style.height = `${Math.max(h * zoom, 24)}px`;
      if (w > 96) { canvas.style.width = "192px"; canvas.style.height = `${Math.max(24, (192 * h) / w)}px`; }
      const context = canvas.getContext("2d");
      const image = context.createImageData(w, h);
      values.forEach((v, i) => {
        const [r, g, b] = colour(v);
        image.data.set([r, g, b, 255], 4 * i);
      });
      context.putImageData(image, 0, 0);
      row.appendChild(canvas);
    }
    box.append(title, row);
    holder.appendChild(box);
  }
  $("maps-panel").hidden = stages.length === 0;
}

function setUpDrawing() {
  $("draw").hidden = false;
  const canvas = $("canvas");
  const context = canvas.getContext("2d");
  const clear = () => { context.fillStyle = "#000"; context.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  context.strokeStyle = "#fff";
  context.lineWidth = 22;
  context.lineCap = context.lineJoin = "round";
  let drawing = false;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    context.beginPath();
    context.moveTo(...at(e));
    context.lineTo(...at(e));
    context.stroke();
  });
  canvas.addEventListener("pointermove", (e) => { if (drawing) { context.lineTo(...at(e)); context.stroke(); } });
  canvas.addEventListener("pointerup", () => { drawing = false; });
  $("clear").addEventListener("click", clear);
  $("classify-drawing").addEventListener("click", () => {
    // Shrink the drawing to the model's image size here: a model trained without resizing only reads that size.
    const [h, w] = model.image_size;
    const small = document.createElement("canvas");
    small.width = w;
    small.height = h;
    const c = small.getContext("2d");
    c.imageSmoothingEnabled = true;
    c.imageSmoothingQuality = "high";
    c.drawImage(canvas, 0, 0, w, h);
    small.toBlob((blob) => sendFile(blob, "drawing.png"), "image/png");
  });
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
  send({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ inputs: [text] }) },
    `"${text}"`);
});
start().catch((e) => { $("about").textContent = `Could not read /model: ${e}`; });
