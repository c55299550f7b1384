"""gen_text.py PATH MIB: a seeded pseudo-text file (same bytes on every run and host)."""
import random
import sys

path, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
target = mib << 20
with open(path, "w") as f:
    n = 0
    while n < target:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        f.write(line)
        n += len(line)
