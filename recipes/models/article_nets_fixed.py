"""The article's three networks with its mistakes fixed.

- no conv bias before a norm (the norm's beta is the shift);
- LBNNet normalizes the 64 channels at each position: channels last, LayerNorm, back;
- GroupLBNNet uses the GN paper's default of 32 groups.
"""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn1(self.conv1(x)))


class LBNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.ln1 = nn.LayerNorm(64)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.conv1(x)
        x = x.permute(0, 2, 3, 1)  # (N, H, W, C): LayerNorm normalizes the last dim
        x = self.ln1(x)
        x = x.permute(0, 3, 1, 2)
        return self.relu(x)


class GroupLBNNet(nn.Module):
    def __init__(self, groups=32):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)
        self.gn1 = nn.GroupNorm(groups, 64)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.gn1(self.conv1(x)))


def main():
    data = datasets.ImageFolder("/path/to/train", transform=transforms.ToTensor())
    train_loader = DataLoader(data, batch_size=32, shuffle=True, drop_last=True)
    model = BNNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    for images, _ in train_loader:
        optimizer.zero_grad()
        model(images).mean().backward()
        optimizer.step()


if __name__ == "__main__":
    main()
