"""The same tagger with a BatchNorm1d on the LSTM output: two mistakes in one line.

`out` is (N, L, 128) because of batch_first=True; BatchNorm1d(128) expects (N, 128, L) and
takes L as the channel count (NRM012), and BatchNorm on RNN hidden states is the wrong
family anyway (NRM007): use LayerNorm as in lstm_tagger.py.
"""

import torch
from torch import nn


class BNLSTMTagger(nn.Module):
    def __init__(self, vocab_size=5000, embed_dim=64, hidden=128, num_tags=17):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.bn = nn.BatchNorm1d(hidden)
        self.head = nn.Linear(hidden, num_tags)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(self.bn(out))


if __name__ == "__main__":
    BNLSTMTagger()(torch.randint(0, 5000, (16, 20)))
