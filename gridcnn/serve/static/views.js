// How the page draws what the server sends: grids (feature maps, spectrograms) as colour images, Grad-CAM heatmaps
// over a picture or a spectrogram, a waveform, and texts with each token's weight. Plain canvas, no library.

// Colour scales at five stops, interpolated: viridis for feature maps (matplotlib's default), magma for
// spectrograms (as errors.png draws them), and a blue-to-red "jet"-like scale for heatmaps, the colours Grad-CAM
// pictures use; a heatmap's alpha also grows with the value, so where the network did not look the input shows.
const SCALES = {
  viridis: [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
  magma: [[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]],
  heat: [[48, 18, 200], [40, 150, 250], [40, 220, 120], [250, 200, 40], [215, 20, 20]],
};

export const HEAT_ALPHA = [0.3, 0.45];  // the input shows through everywhere, least where the network looked

export function colour(v, scale = "viridis") {
  const stops = SCALES[scale];
  const x = (v / 255) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const t = x - i;
  return stops[i].map((c, k) => Math.round(c + t * (stops[i + 1][k] - c)));
}

// A canvas of a grid given row by row (h rows of w values, 0-255). A spectrogram's rows are time frames: with
// timeAcross the canvas is transposed, time running left to right and low frequencies at the bottom.
export function gridCanvas(values, h, w, { scale = "viridis", timeAcross = false, alpha = null } = {}) {
  // alpha: null for opaque, else [a0, a1]: a cell of value v gets alpha a0 + a1 * v / 255 (0-1).
  const canvas = document.createElement("canvas");
  canvas.width = timeAcross ? h : w;
  canvas.height = timeAcross ? w : h;
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const v = values[r * w + c];
      const [x, y] = timeAcross ? [r, w - 1 - c] : [c, r];
      const a = alpha === null ? 255 : Math.round(255 * alpha[0] + alpha[1] * v);
      image.data.set([...colour(v, scale), a], 4 * (y * canvas.width + x));
    }
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

// The heatmap laid over what the model saw (an <img> or a spectrogram canvas), stretched to its box: the image
// adapter resizes the whole picture to the grid, so a stretched grid cell covers the pixels it came from.
export function overlay(base, explanation, timeAcross) {
  const holder = document.createElement("div");
  holder.className = "overlay";
  holder.appendChild(base);
  if (explanation && explanation.heatmap) {
    const [h, w] = explanation.shape;
    const heat = gridCanvas(explanation.heatmap.flat(), h, w, { scale: "heat", timeAcross, alpha: HEAT_ALPHA });
    heat.className = "heat";
    heat.setAttribute("aria-label", `heatmap for ${explanation.class}`);
    holder.appendChild(heat);
  }
  return holder;
}

// A waveform as a min/max envelope per pixel column (what sound editors draw), with a time axis in seconds.
export function waveformCanvas(samples, rate) {
  const canvas = document.createElement("canvas");
  canvas.className = "wave";
  canvas.width = 600;
  canvas.height = 90;
  const context = canvas.getContext("2d");
  context.fillStyle = "#f4f6f8";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = "#1f4e79";
  const per = Math.max(1, Math.floor(samples.length / canvas.width));
  const peak = samples.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
  for (let x = 0; x < canvas.width; x++) {
    let lo = 0;
    let hi = 0;
    for (let i = x * per; i < Math.min(samples.length, (x + 1) * per); i++) {
      lo = Math.min(lo, samples[i]);
      hi = Math.max(hi, samples[i]);
    }
    const y0 = (0.5 - (hi / peak) * 0.45) * canvas.height;
    const y1 = (0.5 - (lo / peak) * 0.45) * canvas.height;
    context.fillRect(x, y0, 1, Math.max(1, y1 - y0));
  }
  context.fillStyle = "#555";
  context.font = "11px system-ui, sans-serif";
  context.fillText(`${(samples.length / rate).toFixed(2)} s`, canvas.width - 40, canvas.height - 4);
  return canvas;
}

// A text's tokens, each on a background as strong as its weight: green for the class, red against it.
export function tokenView(explanation) {
  const box = document.createElement("p");
  box.className = "tokens";
  explanation.tokens.forEach((token, i) => {
    const w = explanation.token_weights[i];
    const span = document.createElement("span");
    const special = /^\[.*\]$/.test(token);
    span.className = special ? "token special" : "token";
    const piece = token.startsWith("##");  // a word piece continues the word before it: no space between
    span.textContent = piece ? token.slice(2) : token;
    if (i > 0 && !piece) box.appendChild(document.createTextNode(" "));  // where a line may break
    const colour = w >= 0 ? "26, 150, 65" : "215, 48, 39";
    span.style.background = `rgba(${colour}, ${Math.min(1, Math.abs(w)).toFixed(2)})`;
    if (Math.abs(w) > 0.6) span.style.color = "#fff";
    span.title = `weight ${w.toFixed(2)}`;
    box.appendChild(span);
  });
  return box;
}

// Each stage's first maps, titled with the stage's name, map count and size (the titles stay above their row
// at any width). Spectrogram models draw them with time across, like the spectrogram.
export function featureMaps(holder, stages, timeAcross) {
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
    const [cw, ch] = timeAcross ? [h, w] : [w, h];
    const zoom = Math.max(1, Math.floor(96 / Math.max(h, w)));
    for (const values of stage.maps) {
      const canvas = gridCanvas(values, h, w, { timeAcross });
      canvas.style.width = `${Math.max(cw * zoom, 24)}px`;
      canvas.style.height = `${Math.max(ch * zoom, 24)}px`;
      if (cw > 96) { canvas.style.width = "192px"; canvas.style.height = `${Math.max(24, (192 * ch) / cw)}px`; }
      row.appendChild(canvas);
    }
    box.append(title, row);
    holder.appendChild(box);
  }
}
