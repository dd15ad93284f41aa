"""Generates a media tree like a Zotonic site's files/archive: most bytes in JPEG/MP4-like
(incompressible) files, some HTML/SVG/PDF-like text. Deterministic for a given size.

usage: python3 tools/gen_tree.py DIR SIZE_MIB
"""
import os
import random
import sys

def main():
    root, mib = sys.argv[1], int(sys.argv[2])
    rng = random.Random(42)
    words = [w.encode() for w in "zotonic page resource media archive backup edge predicate category "
             "title summary body published author language translation image video".split()]
    total, budget, n = 0, mib * 1024 * 1024, 0
    while total < budget:
        n += 1
        d = os.path.join(root, "%04d" % (2020 + n % 5), "%02d" % (1 + n % 12), "%02d" % (1 + n % 28))
        os.makedirs(d, exist_ok=True)
        kind = rng.random()
        if kind < 0.75:
            size = rng.randint(100_000, 4_000_000)
            name, data = "img%05d.jpg" % n, os.urandom(size)
        elif kind < 0.80:
            size = rng.randint(4_000_000, 12_000_000)
            name, data = "clip%05d.mp4" % n, os.urandom(size)
        else:
            size = rng.randint(2_000, 400_000)
            text = b" ".join(rng.choice(words) for _ in range(size // 7))
            name, data = "page%05d.html" % n, b"<html><body><p>" + text + b"</p></body></html>\n"
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        total += len(data)

if __name__ == "__main__":
    main()
