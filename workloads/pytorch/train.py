#!/usr/bin/python3
"""PyTorch training steps of a small MLP on seeded synthetic data.

Usage: train.py STEPS [BATCH] [WIDTH]. Uses the GPU when the sandbox has one (CUDA),
else the CPU with one intra-op thread per CPU. A few warm-up steps are not timed;
`import torch` (about 12 s under emulation) is not timed either. Prints device=,
steps_per_s= and samples_per_s=.
"""

import os
import sys
import time

import torch

steps = int(sys.argv[1])
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
width = int(sys.argv[3]) if len(sys.argv) > 3 else 64
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if dev.type == "cpu":
    torch.set_num_threads(os.cpu_count() or 1)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(64, width), torch.nn.ReLU(),
    torch.nn.Linear(width, width), torch.nn.ReLU(),
    torch.nn.Linear(width, 10),
).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
x = torch.randn(batch * 8, 64, generator=torch.Generator().manual_seed(1)).to(dev)
y = torch.randint(0, 10, (batch * 8,), generator=torch.Generator().manual_seed(2)).to(dev)


def step(i: int) -> float:
    lo = (i % 8) * batch
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x[lo:lo + batch]), y[lo:lo + batch])
    loss.backward()
    opt.step()
    return loss


for i in range(5):  # warm-up: allocator, kernels, autograd graph
    step(i)
if dev.type == "cuda":
    torch.cuda.synchronize()
t0 = time.perf_counter()
for i in range(steps):
    loss = step(i)
if dev.type == "cuda":
    torch.cuda.synchronize()
dt = time.perf_counter() - t0
print(f"device={dev.type} threads={torch.get_num_threads()} torch={torch.__version__}")
print(f"final_loss={float(loss):.4f}")
print(f"train_s={dt:.4f}")
print(f"steps_per_s={steps / dt:.4f}")
print(f"samples_per_s={steps * batch / dt:.2f}")
