#!/usr/bin/python3
"""Small user data for the tests of your own data (UserDataTests), made with Debian's
python3-pil and python3-numpy:

  make_user_data.py OUT

OUT/folder        an image folder: classes "Zebra", "ant", "bee" (code-point order puts "Zebra"
                  first), PNG and JPEG files of two sizes, grey and colour, one class with a
                  nested folder and an upper-case extension, and a text file to ignore
OUT/expected.npz  what torchvision's ImageFolder with Resize(16) and CenterCrop(16) gives for
                  OUT/folder on PIL images: x_train/x_test (uint8 [N, 3, 16, 16]),
                  and y_train/y_test
OUT/grey.png, OUT/grey_expected.npy   a colour image, and PIL's convert("L") of it
OUT/arrays4, arrays3, arrays2        x_*.npy of shapes [N, 3, 8, 8] (uint8), [N, 6, 5] and [N, 7]
                  (float32), with int64 labels of 3 classes
OUT/stored.npz, OUT/deflated.npz     arrays4 as np.savez and np.savez_compressed write it
"""
import os
import sys

import numpy as np
from PIL import Image

out = sys.argv[1]
rng = np.random.default_rng(7)
classes = ["Zebra", "ant", "bee"]


def image(size, grey):
    h, w = size
    a = np.clip(rng.normal(128, 50, (h, w, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(a)
    return im.convert("L") if grey else im


files = {"train": [], "test": []}
for split, count in [("train", 12), ("test", 4)]:
    for label, name in enumerate(classes):
        folder = os.path.join(out, "folder", split, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            size = [(16, 16), (20, 26)][i % 2]
            ext = ["png", "jpg", "jpeg"][i % 3]
            if name == "bee" and i == 0:
                ext = "JPG"
            sub = folder
            if name == "ant" and i >= count - 2:
                sub = os.path.join(folder, "more")
                os.makedirs(sub, exist_ok=True)
            path = os.path.join(sub, f"{i:02d}.{ext}")
            im = image(size, grey=i % 4 == 1)
            im.save(path, format="PNG" if ext == "png" else "JPEG", quality=90)
        with open(os.path.join(folder, "notes.txt"), "w") as f:
            f.write("not an image\n")


def torchvision_order(split):
    # ImageFolder.make_dataset: classes in sorted order, os.walk sorted, files sorted.
    listed = []
    for label, name in enumerate(sorted(classes)):
        for root, _, names in sorted(os.walk(os.path.join(out, "folder", split, name), followlinks=True)):
            for n in sorted(names):
                if n.lower().endswith((".jpg", ".jpeg", ".png")):
                    listed.append((os.path.join(root, n), label))
    return listed


def transform(path, size=16):
    # default_loader's convert("RGB"), Resize(16) (shorter side, bilinear), CenterCrop(16).
    im = Image.open(path).convert("RGB")
    w, h = im.size
    short, long = min(w, h), max(w, h)
    new = (size, int(size * long / short)) if w <= h else (int(size * long / short), size)
    if new != (w, h):
        im = im.resize(new, Image.BILINEAR)
    w, h = im.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return np.asarray(im.crop((left, top, left + size, top + size))).transpose(2, 0, 1)


expected = {}
for split in ["train", "test"]:
    listed = torchvision_order(split)
    expected[f"x_{split}"] = np.stack([transform(p) for p, _ in listed])
    expected[f"y_{split}"] = np.array([label for _, label in listed])
np.savez(os.path.join(out, "expected.npz"), **expected)

colour = image((9, 11), grey=False)
colour.save(os.path.join(out, "grey.png"))
np.save(os.path.join(out, "grey_expected.npy"), np.asarray(colour.convert("L")))

for name, shape, dtype in [("arrays4", (3, 8, 8), np.uint8), ("arrays3", (6, 5), np.float32),
                           ("arrays2", (7,), np.float32)]:
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    for split, n in [("train", 48), ("test", 16)]:
        y = rng.integers(0, 3, n)
        y[:3] = [0, 1, 2]
        x = rng.integers(0, 256, (n,) + shape).astype(dtype)
        if dtype == np.float32:
            x = (x / 64.0 - 2.0).astype(np.float32)
        np.save(os.path.join(folder, f"x_{split}.npy"), x)
        np.save(os.path.join(folder, f"y_{split}.npy"), y.astype(np.int64))
arrays = {k: np.load(os.path.join(out, "arrays4", f"{k}.npy")) for k in ["x_train", "y_train", "x_test", "y_test"]}
np.savez(os.path.join(out, "stored.npz"), **arrays)
np.savez_compressed(os.path.join(out, "deflated.npz"), **arrays)
