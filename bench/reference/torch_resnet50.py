"""PyTorch (eager, CPU) ResNet50 inference: the reference of ``bench/resnet50_inference.py``.

ResNet50 v1 written out by hand (torchvision-free), layer for layer as Keras's
``keras.applications.ResNet50`` builds it: a zero-padded 7x7/2 stem, 3x3/2 max pooling,
bottleneck blocks [3, 4, 6, 3] (1x1, 3x3, 1x1 convolutions with biases, BatchNormalization
with epsilon 1.001e-5; a stage's stride on the first 1x1 convolution of its first block and
on its 1x1 shortcut), global average pooling and a 1000-way softmax Dense; in ``eval()`` mode
under ``torch.inference_mode()``, NCHW, float32, random weights: 25,583,592 parameters, which
with the 53,120 moving statistics are Keras's 25,636,712. Times ``model(x)`` for a batch of 8
images of 224x224x3, ``--repeats`` times after ``--warmup`` calls.

Usage: python torch_resnet50.py [--batch 8] [--repeats 10] [--threads 2]
Prints one JSON line on stdout: ``seconds`` (every timed call), ``median_s``.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, stride=stride), nn.BatchNorm2d(width, eps=1.001e-5),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width, eps=1.001e-5),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1), nn.BatchNorm2d(cout, eps=1.001e-5))
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride),
                                       nn.BatchNorm2d(cout, eps=1.001e-5))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet50(nn.Module):
    """Keras's ResNet50 layer for layer (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.ZeroPad2d(3), nn.Conv2d(3, 64, 7, stride=2),
                                  nn.BatchNorm2d(64, eps=1.001e-5), nn.ReLU(inplace=True),
                                  nn.ZeroPad2d(1), nn.MaxPool2d(3, stride=2))
        blocks, cin = [], 64
        for width, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(count):
                blocks.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(2048, 1000)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return torch.softmax(self.head(x.mean(dim=(2, 3))), dim=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ResNet50().eval()
    x = torch.rand(args.batch, 3, 224, 224)
    seconds = []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeats):
            start = time.perf_counter()
            model(x)
            if i >= args.warmup:
                seconds.append(time.perf_counter() - start)
    print(json.dumps({"runner": "torch", "version": torch.__version__, "batch": args.batch,
                      "threads": torch.get_num_threads(),
                      "params": sum(p.numel() for p in model.parameters()),
                      "seconds": [round(s, 5) for s in seconds],
                      "median_s": statistics.median(seconds)}), flush=True)


if __name__ == "__main__":
    main()
