"""The D2L chapter's ResNet-18 and ``train_ch6`` loop, reproduced as the speed baseline.

Copied from ../shared/reference/d2l-resnet-chapter.md with three changes, none in the hot
path: the Animator's plotting is left out (its ``add`` only ran every 50 batches), ``root``
names the data folder, and ``train_ch6`` takes ``max_steps``, ``evaluate`` and an ``on_step``
hook so that a benchmark can time a bounded number of batches. The network, the DataLoader with per-sample
``Resize`` + ``ToTensor`` (``num_workers=1``), plain SGD, Xavier initialisation, the float32
forward and backward and the per-batch metric accumulation (``float()`` on every batch) are the
chapter's.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torch.utils import data
from torchvision import transforms


class Residual(nn.Module):  #@save
    def __init__(self, input_channels, num_channels,
                 use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels,
                               kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels,
                               kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels,
                                   kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet_block(input_channels, num_channels, num_residuals,
                 first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels,
                                use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


def make_net():
    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))
    return nn.Sequential(b1, b2, b3, b4, b5,
                         nn.AdaptiveMaxPool2d((1, 1)),
                         nn.Flatten(), nn.Linear(512, 10))


class Timer:
    """Record multiple running times."""
    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.time()

    def stop(self):
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def sum(self):
        return sum(self.times)

    def cumsum(self):
        return np.array(self.times).cumsum().tolist()


class Accumulator:
    """For accumulating sums over `n` variables."""
    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


def accuracy(y_hat, y):
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    return float((y_hat.type(y.dtype) == y).sum())


def evaluate_accuracy_gpu(net, data_iter, device=None):
    if not device:
        device = next(iter(net.parameters())).device
    metric = Accumulator(2)
    for X, y in data_iter:
        X, y = X.to(device), y.to(device)
        metric.add(accuracy(net(X), y), sum(y.shape))
    return metric[0] / metric[1]


def try_gpu(i=0):
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f'cuda:{i}')
    return torch.device('cpu')


def load_data_fashion_mnist(batch_size, resize=None, root="./"):
    """Download the Fashion-MNIST dataset and then load it into memory."""
    trans = [transforms.ToTensor()]
    if resize:
        trans.insert(0, transforms.Resize(resize))
    trans = transforms.Compose(trans)
    mnist_train = torchvision.datasets.FashionMNIST(
        root=root, train=True, transform=trans, download=True)
    mnist_test = torchvision.datasets.FashionMNIST(
        root=root, train=False, transform=trans, download=True)
    return (data.DataLoader(mnist_train, batch_size, shuffle=True, num_workers=1),
            data.DataLoader(mnist_test, batch_size, shuffle=False, num_workers=1))


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None, max_steps=None,
              on_step=None, evaluate=True):
    """Train and evaluate a model with CPU or GPU (the chapter's loop)."""
    device = device or try_gpu()

    def init_weights(m):
        if type(m) == nn.Linear or type(m) == nn.Conv2d:
            torch.nn.init.xavier_uniform_(m.weight)
    net.apply(init_weights)
    print('training on', device)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    timer = Timer()
    steps = examples = 0
    train_loss = train_acc = test_acc = float("nan")
    metric = Accumulator(3)
    for epoch in range(num_epochs):
        metric = Accumulator(3)  # train_loss, train_acc, num_examples
        for i, (X, y) in enumerate(train_iter):
            timer.start()
            net.train()
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], accuracy(y_hat, y), X.shape[0])
            timer.stop()
            train_loss, train_acc = metric[0] / metric[2], metric[1] / metric[2]
            steps += 1
            examples += X.shape[0]
            if on_step is not None:
                on_step(steps, X.shape[0])
            if max_steps is not None and steps >= max_steps:
                break
        if evaluate:
            test_acc = evaluate_accuracy_gpu(net, test_iter)
        if max_steps is not None and steps >= max_steps:
            break
    print(f'loss {train_loss:.3f}, train acc {train_acc:.3f}, '
          f'test acc {test_acc:.3f}')
    # The chapter prints metric[2] * num_epochs / timer.sum(); counting the examples actually
    # seen gives the same figure for whole epochs and stays right for a bounded run.
    print(f'{examples / timer.sum():.1f} examples/sec '
          f'on {str(device)}')
    return {"train_loss": train_loss, "train_acc": train_acc, "test_acc": test_acc,
            "timer_seconds": timer.sum(), "steps": steps}


def main() -> int:
    """Time ``steps`` batches of the chapter's loop in this process; print one JSON object."""
    parser = argparse.ArgumentParser(description="time the chapter's train_ch6 loop")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--resize", type=int, default=96)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, resize=args.resize,
                                                    root=args.data_dir)
    marks = []
    result = train_ch6(make_net(), train_iter, test_iter, 1, args.lr,
                       device=torch.device("cpu"), max_steps=args.steps, evaluate=False,
                       on_step=lambda step, n: marks.append((time.perf_counter(), n)))
    timed = marks[1:]  # from the end of step 2: the first two are warm-up, as for resnet-gui
    examples = sum(n for _, n in timed[1:])
    print(json.dumps({"examples_per_sec": examples / (timed[-1][0] - timed[0][0]),
                      "steps": result["steps"], "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
