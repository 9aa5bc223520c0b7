"""A part-of-speech style LSTM tagger with LayerNorm on the hidden states.

LayerNorm normalizes each token's 128 features on their own, the same at training and test
time (Ba, Kiros & Hinton 2016): nothing to flag.
"""

import torch
from torch import nn


class LSTMTagger(nn.Module):
    def __init__(self, vocab_size=5000, embed_dim=64, hidden=128, num_tags=17):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=False)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, num_tags)

    def forward(self, tokens):
        x = self.embed(tokens)  # (N, L, 64)
        out, _ = self.lstm(x)  # (N, L, 128)
        return self.head(self.norm(out))


def main():
    model = LSTMTagger()
    tokens = torch.randint(0, 5000, (16, 20))
    tags = torch.randint(0, 17, (16, 20))
    loss = nn.functional.cross_entropy(model(tokens).flatten(0, 1), tags.flatten())
    loss.backward()


if __name__ == "__main__":
    main()
