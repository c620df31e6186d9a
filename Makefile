# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The core install is all `make demo` needs (no torch), so a fresh clone shows a report fast.
CORE_STAMP := $(VENV)/.installed-core
$(CORE_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

# The CPU build of torch: a bare `pip install torch` would pull a multi-GB CUDA build.
$(STAMP): $(CORE_STAMP)
	$(PY) -m pip install -q torch==2.13.0 -e '.[validate,dev]'
	touch $@

# The policy comparison on the demo preset (its default_target), with evaluation noise and
# failures; it reads nothing beside the checkout. Also written: report.md, figures/, summary.json.
DEMO_OUT ?= out/demo
demo: $(CORE_STAMP)
	$(VENV)/bin/shapeshift compare --preset demo --noise 0.01 --mtbf 8 --repair 0.5 \
	  --ckpt-cost 120 --eval-every 4e16 --runs 20 --workers 2 -o $(DEMO_OUT)
	@echo "open $(DEMO_OUT)/report.html (self-contained) or $(DEMO_OUT)/report.md"

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

# The built-in gemstones-lm preset: power laws with a shared exponent (the form with the lowest
# held-out error, see the extrapolation check in its provenance), fitted from the Gemstones
# data beside the checkout. Only the fitted numbers go into the repository.
GEMSTONES := ../shared/data/gemstones/wandb_df_for_fitting_hot.jsonl
.PHONY: preset-gemstones
preset-gemstones: $(STAMP)
	$(VENV)/bin/shapeshift fit $(GEMSTONES) --shape-col width --shape-col depth \
	  --shape-name 'w{width}-d{depth}' --tokens-col tokens --params-col params_active_precise \
	  --loss-col final_loss --form power --share exponent \
	  --holdout-above 5.5e10 --holdout-col tokens \
	  --time-col 'step*seconds_per_step*num_nodes' --name gemstones-lm \
	  --provenance 'source=Gemstones (McLeish et al. 2025), hot checkpoints, 22 width x depth shapes' \
	  --provenance 'paper=McLeish et al. 2025, Gemstones: A Model Suite for Multi-Faceted Scaling Laws, arXiv 2502.06857' \
	  --provenance 'data=mcleish7/gemstone-scaling-laws wandb_dfs/wandb_df_for_fitting_hot.jsonl' \
	  --provenance 'licence=MIT (Copyright (c) 2025 Sean McLeish et al.)' \
	  --provenance 'compute=C = 6 N D with N = params_active_precise, D = tokens' \
	  --provenance 'throughput=FLOP/s per node: C / (step x seconds_per_step x num_nodes), model FLOPs (6 N D) of the runs, assuming linear scaling across the nodes each run used' \
	  -o laws/presets/gemstones-lm.json
