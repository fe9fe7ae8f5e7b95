#!/usr/bin/env python3
"""make_idx_fixture.py — writes a tiny MNIST-like IDX dataset for the
end-to-end tests: 8 x 8 greyscale images in 4 classes (class c lights up
quadrant c, plus noise), 256 train and 64 test images.  The train files are
gzip-compressed and the test files plain, so both readers are exercised.
Usage: make_idx_fixture.py DIR"""
import gzip
import os
import random
import struct
import sys


def images(n, rng):
    pix, lab = bytearray(), bytearray()
    for _ in range(n):
        c = rng.randrange(4)
        for y in range(8):
            for x in range(8):
                q = (y >= 4) * 2 + (x >= 4)
                v = 200 if q == c else 30
                pix.append(max(0, min(255, v + rng.randrange(-30, 31))))
        lab.append(c)
    return bytes(pix), bytes(lab)


def write(path, data, gz):
    with (gzip.open if gz else open)(path, 'wb') as f:
        f.write(data)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(7)
    for split, n, gz in (('train', 256, True), ('t10k', 64, False)):
        pix, lab = images(n, rng)
        sfx = '.gz' if gz else ''
        write(f'{out}/{split}-images-idx3-ubyte{sfx}', struct.pack('>IIII', 0x803, n, 8, 8) + pix, gz)
        write(f'{out}/{split}-labels-idx1-ubyte{sfx}', struct.pack('>II', 0x801, n) + lab, gz)


if __name__ == '__main__':
    main()
