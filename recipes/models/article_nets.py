"""The source article's three networks, exactly as published (mistakes included).

`normsuite check recipes/models/article_nets.py` flags them:
- LBNNet: nn.LayerNorm(64) on an (N, 64, H, W) feature map normalizes the width, not the
  64 channels (NRM002); on 32x32 images it raises at the first forward pass.
- every conv keeps its bias although a BatchNorm/GroupNorm follows (NRM001 for BN).
The fixed versions are in article_nets_fixed.py.
"""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms


class ImageDataset(Dataset):
    def __init__(self, data_dir, transform=None):
        self.data = datasets.ImageFolder(root=data_dir, transform=transform)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]  # the article applied `transform` a second time here


class BNNet(nn.Module):
    def __init__(self):
        super(BNNet, self).__init__()  # noqa: UP008 (as in the article)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        return x


class LBNNet(nn.Module):
    def __init__(self):
        super(LBNNet, self).__init__()  # noqa: UP008 (as in the article)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.ln1 = nn.LayerNorm(64)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.conv1(x)
        x = self.ln1(x)
        x = self.relu(x)
        return x


class GroupLBNNet(nn.Module):
    def __init__(self, groups=8):
        super(GroupLBNNet, self).__init__()  # noqa: UP008 (as in the article)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.gn1 = nn.GroupNorm(groups, 64)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.conv1(x)
        x = self.gn1(x)
        x = self.relu(x)
        return x


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_dataset = ImageDataset("/path/to/train", transform=transforms.ToTensor())
    train_loader = DataLoader(train_dataset, batch_size=32, shuffle=True)
    for net in (BNNet, LBNNet, GroupLBNNet):
        model = net().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
        for data, _target in train_loader:
            optimizer.zero_grad()
            model(data.to(device)).mean().backward()
            optimizer.step()


if __name__ == "__main__":
    main()
