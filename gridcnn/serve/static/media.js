// Inputs the browser makes itself: a drawing, a camera snapshot, a microphone recording. Each ends as a file
// (PNG or WAV) handed to `send`, so the server reads it exactly as an upload.

const $ = (id) => document.getElementById(id);

// Decode any sound the browser can play into mono samples at `rate` (the model's rate: the browser resamples).
export async function decodeSound(blob, rate) {
  const context = new OfflineAudioContext(1, 1, rate);
  const buffer = await context.decodeAudioData(await blob.arrayBuffer());
  const mono = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    buffer.getChannelData(c).forEach((v, i) => { mono[i] += v / buffer.numberOfChannels; });
  }
  return mono;
}

// 16-bit PCM WAV: what the server's sound reader (libsndfile) reads everywhere, unlike the WebM/Opus that
// Chromium's MediaRecorder writes.
export function wavBlob(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + 2 * samples.length));
  const text = (at, s) => [...s].forEach((ch, i) => view.setUint8(at + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * samples.length, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * samples.length, true);
  samples.forEach((v, i) => view.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, v)) * 32767, true));
  return new Blob([view], { type: "audio/wav" });
}

export function setUpRecording(model, sendFile) {
  if (!(navigator.mediaDevices && window.MediaRecorder)) return;  // an old browser, or a page not on https/localhost
  $("record").hidden = false;
  // The model hears clips of duration_s; record a little longer (it crops), at most 10 s.
  const seconds = Math.min(10, Math.max(1, Math.ceil(model.duration_s + 0.5)));
  $("record-note").textContent = `Records ${seconds} s (the model hears ${model.duration_s.toFixed(2)} s), ` +
    "or until you press Stop, then classifies the clip.";
  let recorder = null;
  let timer = null;
  $("record-start").addEventListener("click", async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      $("record-status").textContent = `No microphone: ${e.message || e.name}.`;
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
    recorder.addEventListener("stop", async () => {
      stream.getTracks().forEach((t) => t.stop());
      clearTimeout(timer);
      $("record-start").disabled = false;
      $("record-stop").disabled = true;
      $("record-status").textContent = "Classifying the recording…";
      try {
        const samples = await decodeSound(new Blob(chunks, { type: recorder.mimeType }), model.sample_rate);
        await sendFile(wavBlob(samples, model.sample_rate), "recording.wav");
        $("record-status").textContent = `Recorded ${(samples.length / model.sample_rate).toFixed(1)} s.`;
      } catch (e) {
        $("record-status").textContent = `Could not read the recording: ${e.message || e}.`;
      }
    });
    recorder.start();
    $("record-start").disabled = true;
    $("record-stop").disabled = false;
    $("record-status").textContent = "Recording…";
    timer = setTimeout(() => recorder.state === "recording" && recorder.stop(), seconds * 1000);
  });
  $("record-stop").addEventListener("click", () => recorder && recorder.state === "recording" && recorder.stop());
}

export function setUpCamera(model, sendFile) {
  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) return;
  $("camera").hidden = false;
  const video = $("video");
  $("camera-start").addEventListener("click", async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (e) {
      $("camera-start").textContent = "No camera";
      $("camera-start").disabled = true;
      return;
    }
    video.hidden = false;
    await video.play();
    $("camera-snap").disabled = false;
  });
  $("camera-snap").addEventListener("click", () => {
    // At the model's image size, stretched as the image adapter stretches: a model trained on one size without
    // size= reads only that size, and a smaller file goes up faster.
    const [h, w] = model.image_size;
    const frame = document.createElement("canvas");
    frame.width = w;
    frame.height = h;
    const context = frame.getContext("2d");
    context.imageSmoothingQuality = "high";
    context.drawImage(video, 0, 0, w, h);
    frame.toBlob((blob) => sendFile(blob, "camera.png"), "image/png");
  });
}

// The drawing canvas: white strokes on black, as MNIST-like digits are; offered to grayscale models with small
// grids only (a stroke means nothing to a colour-photo model).
export function setUpDrawing(model, sendFile) {
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
