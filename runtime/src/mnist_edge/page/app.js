// mnist-edge's page: draw, photograph or watch digits being read by the server it comes from
// (POST read?crops=1, GET camera?image=1, GET info). No library, nothing from another origin.
"use strict";

const $ = (id) => document.getElementById(id);
const PAUSE_MS = 350;      // after the pen lifts, before the drawing is read
const CAMERA_MS = 150;     // between two polls of the camera's latest reading
const INK = "#d33";
let requests = 0;          // reads asked for; an answer to an older one is dropped

// ------------------------------------------------------------------------- answers on the page
function showReading(answer, roundTrip, source, n) {
  const number = $("number");
  $("source").textContent = source ? `(${source})` : "";
  $("digits").replaceChildren();
  if (answer.error) {
    number.textContent = "error";
    number.dataset.state = "error";
    $("why").textContent = answer.error;
    $("latency").textContent = "";
  } else {
    number.textContent = answer.number || "no digit";
    number.dataset.state = answer.number ? "read" : "no-digit";
    $("why").textContent = answer.no_digit || "";
    for (const d of answer.digits) $("digits").append(digitTile(d, false));
    for (const line of answer.refused || []) {
      const li = document.createElement("li");
      li.className = "refused";
      li.textContent = `not digits: ${line.reason}`;
      $("digits").append(li);
    }
    const queued = answer.wait_ms ? ` (+${answer.wait_ms.toFixed(0)} ms queued)` : "";
    $("latency").textContent = `read in ${answer.ms.toFixed(1)} ms on the server${queued}, ` +
      `${roundTrip.toFixed(0)} ms round trip`;
  }
  number.dataset.request = String(n);
}

function digitTile(d) {
  const li = document.createElement("li");
  if (d.crop) li.append(cropCanvas(d.crop));
  const label = document.createElement("b");
  label.textContent = String(d.label);
  li.append(label, `${(100 * d.confidence).toFixed(1)}%`);
  li.title = `box ${d.box.join(", ")}` +
    (d.digit_score === undefined ? "" : `; digit score ${d.digit_score.toFixed(3)}`);
  return li;
}

function cropCanvas(rows) {  // 28x28 values 0-255: white ink on black, as the model saw it
  const c = document.createElement("canvas");
  c.width = rows[0].length;
  c.height = rows.length;
  const img = c.getContext("2d").createImageData(c.width, c.height);
  rows.flat().forEach((v, i) => {
    img.data.set([v, v, v, 255], 4 * i);
  });
  c.getContext("2d").putImageData(img, 0, 0);
  return c;
}

function drawBoxes(ctx, answer, scale) {
  ctx.lineWidth = Math.max(2, 3 * scale);
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
  ctx.font = `${Math.max(12, Math.round(28 * scale))}px system-ui, sans-serif`;
  for (const d of answer.digits || []) {
    const [l, t, r, b] = d.box.map((v) => v * scale);
    ctx.strokeRect(l, t, r - l, b - t);
    ctx.fillText(String(d.label), l, Math.max(ctx.lineWidth + 12, t - 4));
  }
}

async function read(blob, source) {
  const n = ++requests;
  $("number").dataset.state = "reading";
  const start = performance.now();
  let answer;
  try {
    const r = await fetch("read?crops=1", {method: "POST", body: blob,
      headers: {"Content-Type": blob.type || "application/octet-stream"}});
    answer = await r.json();
  } catch (e) {
    answer = {error: `no answer from the server (${e.message})`};
  }
  if (n !== requests) return null;  // a newer read is on its way
  showReading(answer, performance.now() - start, source, n);
  return answer;
}

// ---------------------------------------------------------------------------- the drawing pad
const pad = $("pad");
const ink = pad.getContext("2d");
const padBoxes = $("pad-boxes").getContext("2d");
let pen = null;
let pause = 0;

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  padBoxes.clearRect(0, 0, pad.width, pad.height);
}

function at(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  clearTimeout(pause);
  padBoxes.clearRect(0, 0, pad.width, pad.height);
  pen = at(e);
  ink.lineWidth = 16;
  ink.lineCap = ink.lineJoin = "round";
  ink.strokeStyle = "#000";
  ink.beginPath();
  ink.moveTo(...pen);
  ink.lineTo(...pen);
  ink.stroke();
});

pad.addEventListener("pointermove", (e) => {
  if (!pen) return;
  const points = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const p of points.length ? points : [e]) {
    pen = at(p);
    ink.lineTo(...pen);
  }
  ink.stroke();
});

function lift() {
  if (!pen) return;
  pen = null;
  clearTimeout(pause);
  pause = setTimeout(() => pad.toBlob(async (blob) => {
    const answer = await read(blob, "drawing");
    if (answer && !answer.error) drawBoxes(padBoxes, answer, 1);
  }, "image/png"), PAUSE_MS);
}
pad.addEventListener("pointerup", lift);
pad.addEventListener("pointercancel", lift);
$("clear").addEventListener("click", () => {
  clearTimeout(pause);
  clearPad();
});

// --------------------------------------------------------------------------------- a photo
$("photo").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  const shot = $("shot");
  let picture = null;
  try {
    picture = await createImageBitmap(file, {imageOrientation: "from-image"});
  } catch (err) {
    // not an image the browser shows; the server says what it makes of it
  }
  const answer = await read(file, `photo ${file.name}`);
  if (!picture || !answer) return;
  const scale = Math.min(1, 640 / picture.width);
  shot.width = Math.round(picture.width * scale);
  shot.height = Math.round(picture.height * scale);
  shot.hidden = false;
  const ctx = shot.getContext("2d");
  ctx.drawImage(picture, 0, 0, shot.width, shot.height);
  if (!answer.error) drawBoxes(ctx, answer, shot.width / answer.image.width);
});

// ------------------------------------------------------------------------- the server's camera
async function watchCamera() {
  const live = $("live");
  const ctx = live.getContext("2d");
  const status = $("live-status");
  for (;;) {
    let answer;
    try {
      answer = await (await fetch("camera?image=1&crops=0")).json();
    } catch (e) {
      answer = {error: `no answer from the server (${e.message})`};
    }
    if (answer.error && !answer.image) {
      status.textContent = answer.error;
      status.dataset.state = "error";
    } else {
      const frame = new Image();
      frame.src = answer.image;
      await frame.decode();
      live.width = frame.width;
      live.height = frame.height;
      ctx.drawImage(frame, 0, 0);
      drawBoxes(ctx, answer, 1);
      const what = answer.number ? answer.number.replace("\n", " ") : "no digit";
      status.textContent = `${what} · frame ${answer.frame} · ${answer.fps.toFixed(1)} frames/s` +
        (answer.ended ? " · the video ended" : "");
      status.dataset.state = answer.ended ? "ended" : "live";
      status.dataset.number = answer.number;
      if (answer.ended) return;
    }
    await new Promise((done) => setTimeout(done, CAMERA_MS));
  }
}

// ------------------------------------------------------------------------------ the model
async function describe() {
  try {
    const info = await (await fetch("info")).json();
    const m = info.model;
    const accuracy = m.accuracy === null ? "" : `, ${(100 * m.accuracy).toFixed(2)}% of the test set`;
    let text = `${m.file} (${m.precision}, ${m.backend}${accuracy})`;
    if (info.reader) text += ` · reader ${info.reader.file}`;
    if (info.gate) text += ` · "no digit" gate ${info.gate.file}`;
    $("model").textContent = text;
    if (info.server.camera) {
      $("camera-panel").hidden = false;
      watchCamera();
    }
  } catch (e) {
    $("model").textContent = `the server did not describe its model (${e.message})`;
  }
}

clearPad();
describe();
