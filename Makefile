# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean

LOG    := $(VENV)/install.log

# First run: one line instead of pip's output. pip and setuptools print notices even with
# --quiet (an editable install of a package whose cli/ folder installs as normsuite.cli
# always gets setuptools' "Editable installation" note); they go to the log, which is
# shown in full only if the install fails.
$(STAMP): pyproject.toml
	@echo "== setting up $(VENV): torch, Lightning and the dev tools (first run only, a few minutes)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip > $(LOG) 2>&1 \
		&& $(BIN)/python -m pip install --quiet -e ".[dev]" >> $(LOG) 2>&1 \
		|| { cat $(LOG); echo "make: installing into $(VENV) failed; the log above is in $(LOG)"; exit 1; }
	@touch $(STAMP)
	@echo "   done ($(LOG) has pip's notes)"; echo

venv: $(STAMP)

# check exits 1 when it finds mistakes (it will: the article's LBNNet); only 2 is a failure.
demo: $(STAMP)
	@echo "== 1/4 normsuite check: the source article's three networks"
	$(BIN)/normsuite check recipes/models/article_nets.py || [ $$? -eq 1 ]
	@echo; echo "== 2/4 normsuite recommend: a small ResNet trained at batch 4"
	$(BIN)/normsuite recommend recipes/models/small_resnet_batch4.py
	@echo; echo "== 3/4 normsuite fit: 2 epochs of MNIST-1D, ConvNet1d + BN, ActivationStats on"
	$(BIN)/normsuite fit --config recipes/mnist1d_convnet1d_bn.yaml \
		--trainer.max_epochs 2 --run_name demo
	@echo; echo "== 4/4 normsuite plot-stats: what the norm layers did"
	$(BIN)/normsuite plot-stats runs/demo -o runs/demo/activation_stats.png

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/norm_layers.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
