"""PyTorch (eager, CPU) reference for the workloads resnet_small and transformer_classifier.

Idiomatic eager PyTorch, as ``shared/reference/torch_ref.py`` writes the first five:
  * resnet_small: the ResNet-8 of configs/resnet_small.yaml in NCHW (the images are permuted
    once, outside the timed region); Conv2d without bias + BatchNorm2d(eps=1e-3,
    momentum=0.01, i.e. Keras's 0.99) + ReLU; padding=1 for the 3x3 convolutions (Keras's
    "same" pads a strided one 0/1 instead of 1/1: the same work);
  * transformer_classifier: the Keras example's model (configs/transformer_text.yaml):
    token + position nn.Embedding, attention written as Keras's MultiHeadAttention computes it
    (2 heads of key_dim 32: Linear 32 -> 64 for query, key and value,
    F.scaled_dot_product_attention, Linear 64 -> 32), dropout, nn.LayerNorm(eps=1e-6),
    a 32-unit feed-forward, mean over the sequence, Dense 20, Dense 2;
  * softmax folded into CrossEntropyLoss on logits; Adam with Keras's defaults
    (lr=1e-3, eps=1e-7);
  * batching: torch.randperm + index slicing of in-memory tensors; per-batch loss.item().

Usage: python torch_ref.py WORKLOAD [--epochs E] [--n N] [--threads 2]
Prints one JSON line on stdout.
"""
import time

T_START = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import common  # noqa: E402

T_IMPORTED = time.perf_counter()


def conv_bn(cin, cout, kernel, stride):
    """Conv2d without bias, then BatchNorm2d with Keras's epsilon and momentum."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01))


class Block(nn.Module):
    """A basic residual block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, 1)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 else nn.Identity()

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(x)))
        return F.relu(self.shortcut(x) + h)


class ResNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 1)
        self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        e, inner = common.EMBED, common.HEADS * common.EMBED
        self.tok = nn.Embedding(common.VOCAB, e)
        self.pos = nn.Embedding(common.MAXLEN, e)
        self.query, self.key, self.value = (nn.Linear(e, inner) for _ in range(3))
        self.out = nn.Linear(inner, e)
        self.norm1 = nn.LayerNorm(e, eps=1e-6)
        self.norm2 = nn.LayerNorm(e, eps=1e-6)
        self.ff = nn.Sequential(nn.Linear(e, common.FF), nn.ReLU(), nn.Linear(common.FF, e))
        self.drop1, self.drop2, self.drop3, self.drop4 = (nn.Dropout(0.1) for _ in range(4))
        self.hidden = nn.Linear(e, 20)
        self.classifier = nn.Linear(20, 2)

    def heads(self, t):
        b, s, _ = t.shape
        return t.view(b, s, common.HEADS, common.EMBED).transpose(1, 2)

    def forward(self, tokens, positions):
        x = self.tok(tokens) + self.pos(positions)
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        a = F.scaled_dot_product_attention(q, k, v)
        a = self.out(a.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))
        x = self.norm1(x + self.drop1(a))
        x = self.norm2(x + self.drop2(self.ff(x)))
        h = F.relu(self.hidden(self.drop3(x.mean(dim=1))))
        return self.classifier(self.drop4(h))


def build(workload, inputs):
    """(model, input tensors) of one workload."""
    if workload == "resnet_small":
        return ResNetSmall(), [torch.from_numpy(inputs[0]).permute(0, 3, 1, 2).contiguous()]
    if workload == "transformer_classifier":
        return Transformer(), [torch.from_numpy(a).long() for a in inputs]
    raise ValueError(workload)


def main():
    args = common.parse_args("torch").parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    n, batch, epochs = common.resolve_sizes(args)
    inputs, targets = common.make_data(args.workload, n, args.seed)
    model, xs = build(args.workload, inputs)
    y = torch.from_numpy(targets[0])
    del inputs, targets
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    ce = nn.CrossEntropyLoss()
    rss_setup = common.peak_rss_mb()

    epoch_seconds = []
    t_fit = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        tot_loss, tot_correct, steps = 0.0, 0, 0
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            out = model(*(x[idx] for x in xs))
            loss = ce(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += loss.item()
            tot_correct += int((out.argmax(1) == y[idx]).sum())
            steps += 1
        epoch_seconds.append(time.perf_counter() - t0)
    fit_total = time.perf_counter() - t_fit

    rec = {
        "workload": args.workload, "framework": "torch", "version": torch.__version__,
        "samples": n, "batch": batch, "epochs": epochs, "steps_per_epoch": steps,
        "threads": torch.get_num_threads(), "tag": args.tag,
        "epoch_seconds": [round(e, 5) for e in epoch_seconds],
        "fit_total_s": round(fit_total, 4), "final_loss": tot_loss / steps,
        "final_accuracy": tot_correct / n,
        "import_s": round(T_IMPORTED - T_START, 3), "rss_after_setup_mb": round(rss_setup, 1),
    }
    rec["script_wall_s"] = round(time.perf_counter() - T_START, 3)
    common.emit(rec)


if __name__ == "__main__":
    main()
