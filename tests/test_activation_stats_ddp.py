"""ActivationStats under DDP (2 CPU processes, gloo): the logged numbers are the statistics of
the combined batch, computed here from both ranks' captured tensors in float64. The run uses
the NormSync plugin, which swaps the BatchNorm for a SyncBatchNorm in ``strategy.setup``: the
callback must watch the new layer.

The test runs this file as a script: Lightning's DDP launcher then starts rank 1 by running
the same command again, which is the way users launch DDP too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from test_activation_stats import reference

PER_RANK = 8


@pytest.mark.slow
@pytest.mark.xdist_group("ddp")
def test_ddp_stats_equal_combined_batch_stats(tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, __file__, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    logged = json.loads((tmp_path / "logged.json").read_text())
    assert [step for step, _ in logged] == [0, 2]  # rank 0 only, logging steps only
    assert not (tmp_path / "logged1.json").exists()
    metrics = logged[-1][1]
    assert ranks[0]["bn_class"] == ranks[1]["bn_class"] == "SyncBatchNorm"  # NormSync ran
    # both ranks read back the same reduced numbers; rank 0 logged them
    assert ranks[0]["last_metrics"] == ranks[1]["last_metrics"] == metrics
    assert ranks[0]["all_reduce_calls"] == ranks[1]["all_reduce_calls"] == 2 * 2  # 2 per step
    for name, cdim in {"bn": 1, "gn": 1, "ln": -1}.items():
        for io in ("in", "out"):
            combined = torch.cat([r["captured"][name][io] for r in ranks])
            assert combined.shape[0] == 2 * PER_RANK
            for stat, value in reference(combined, cdim).items():
                got = metrics[f"act/{name}/{io}/{stat}"]
                if stat in ("min", "max", "absmax", "zero_frac", "nonfinite"):
                    assert got == value, (name, io, stat)
                else:  # per-channel sums accumulate in float32
                    assert got == pytest.approx(value, rel=1e-5, abs=1e-6), (name, io, stat)
    # BatchNorm shift: combined batch mean vs the running mean (broadcast from rank 0)
    x = torch.cat([r["captured"]["bn"]["in"] for r in ranks]).double()
    rm, rv = ranks[0]["captured"]["bn"]["rm"].double(), ranks[0]["captured"]["bn"]["rv"].double()
    assert torch.equal(rm, ranks[1]["captured"]["bn"]["rm"].double())
    shift = ((x.mean((0, 2)) - rm).abs() / (rv + 1e-5).sqrt()).mean().item()
    assert metrics["act/bn/bn_shift"] == pytest.approx(shift, rel=1e-5)


# --------------------------------------------------------------------------- the DDP script
def _main(out: Path) -> None:
    import lightning as L
    from lightning.pytorch.loggers import Logger
    from torch import nn

    from normsuite.callbacks import activation_stats as act_mod
    from normsuite.callbacks.activation_stats import ActivationStats
    from normsuite.training.sync_plugin import NormSync

    calls = {"n": 0}
    real_all_reduce = torch.distributed.all_reduce

    def counting_all_reduce(*args: Any, **kwargs: Any) -> Any:
        frame = sys._getframe(1)
        if frame.f_code.co_filename == act_mod.__file__:
            calls["n"] += 1
        return real_all_reduce(*args, **kwargs)

    torch.distributed.all_reduce = counting_all_reduce

    class Memory(Logger):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[tuple[int, dict[str, float]]] = []

        name = "memory"  # type: ignore[assignment]
        version = 0  # type: ignore[assignment]

        def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
            pass

        def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
            if any(k.startswith("act/") for k in metrics):
                self.records.append((int(step or 0), dict(metrics)))

    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv1d(2, 6, 3, padding=1)
            self.bn = nn.BatchNorm1d(6)
            self.gn = nn.GroupNorm(3, 6)
            self.ln = nn.LayerNorm(6)
            self.head = nn.Linear(6 * 12, 3)
            self.captured: dict[str, dict[str, torch.Tensor]] = {}
            self.bn_class = ""

        def on_fit_start(self) -> None:  # after NormSync replaced the BatchNorm
            self.bn_class = type(self.bn).__name__
            for name in ("bn", "gn", "ln"):
                getattr(self, name).register_forward_pre_hook(self._pre(name))
                getattr(self, name).register_forward_hook(self._post(name))

        def _pre(self, name: str) -> Any:
            def hook(mod: nn.Module, args: tuple) -> None:
                d = self.captured[name] = {"in": args[0].detach().clone()}
                if getattr(mod, "running_mean", None) is not None:
                    d["rm"], d["rv"] = mod.running_mean.clone(), mod.running_var.clone()

            return hook

        def _post(self, name: str) -> Any:
            def hook(mod: nn.Module, args: tuple, y: torch.Tensor) -> None:
                self.captured[name]["out"] = y.detach().clone()

            return hook

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            h = self.gn(torch.relu(self.bn(self.conv(x))))
            h = self.ln(h.transpose(1, 2))  # (N, L, C): channels last
            return nn.functional.cross_entropy(self.head(h.flatten(1)), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> torch.utils.data.DataLoader:
            # step k, rank r: rows [16k + 8r, 16k + 8r + 8); ranks differ in scale on purpose
            g = torch.Generator().manual_seed(1)
            x = torch.randn(64, 2, 12, generator=g) * torch.linspace(0.5, 3.0, 64)[:, None, None]
            y = torch.arange(64) % 3
            rank = self.global_rank
            rows = [i for i in range(64) if (i // PER_RANK) % 2 == rank]
            data = torch.utils.data.TensorDataset(x[rows], y[rows])
            return torch.utils.data.DataLoader(data, batch_size=PER_RANK)

    cb, memory, model = ActivationStats(every_n_steps=2), Memory(), Net()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=3,
        callbacks=[cb],
        plugins=[NormSync()],
        logger=memory,
        use_distributed_sampler=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model)
    rank = trainer.global_rank
    state = {
        "captured": model.captured,
        "last_metrics": cb.last_metrics,
        "all_reduce_calls": calls["n"],
        "bn_class": model.bn_class,
    }
    torch.save(state, out / f"rank{rank}.pt")
    if memory.records:
        name = "logged.json" if rank == 0 else f"logged{rank}.json"
        (out / name).write_text(json.dumps(memory.records))


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
