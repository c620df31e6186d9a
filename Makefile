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

# The torch build: TORCH is the requirement, TORCH_INDEX pip's options for where to find it,
# installed first and alone (so that the index options apply to torch only). The default finds
# the CPU build on this project's machines without a network; elsewhere a bare requirement
# pulls a multi-GB CUDA build from PyPI, so choose one, on a fresh venv (`make clean` first):
#   make test TORCH_INDEX='--index-url https://download.pytorch.org/whl/cpu'    # CPU
#   make test TORCH_INDEX='--index-url https://download.pytorch.org/whl/cu126'  # CUDA 12.6
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
$(STAMP): $(CORE_STAMP)
	$(PY) -m pip install -q $(TORCH_INDEX) '$(TORCH)'
	$(PY) -m pip install -q -e '.[validate,dev,lightning,hf,tensorboard,slurm,dask,ray]' && $(PY) -m pip install -q --no-deps 'timm>=1.0'
	touch $@

# The policy comparison on the measured vit-patch-fmnist preset (laws fitted by the CPU
# confirmation loop, docs/examples/validate-vit-patch), at its default_target, with the
# evaluation noise those runs showed (about 3% of the loss). It reads nothing beside the
# checkout. Also written: report.md, figures/, summary.json, runs.csv.
DEMO_OUT ?= out/demo
demo: $(CORE_STAMP)
	$(VENV)/bin/shapeshift compare --preset vit-patch-fmnist --noise 0.03 --runs 20 --workers 2 \
	  -o $(DEMO_OUT)
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
	  --loss-col final_loss --form power --share exponent --bootstrap 200 --seed 0 \
	  --holdout-above 5.5e10 --holdout-col tokens \
	  --time-col 'step*seconds_per_step*num_nodes' --name gemstones-lm \
	  --provenance 'source=Gemstones (McLeish et al. 2025), hot checkpoints, 22 width x depth shapes' \
	  --provenance 'paper=McLeish et al. 2025, Gemstones: A Model Suite for Multi-Faceted Scaling Laws, arXiv 2502.06857' \
	  --provenance 'data=mcleish7/gemstone-scaling-laws wandb_dfs/wandb_df_for_fitting_hot.jsonl' \
	  --provenance 'licence=MIT (Copyright (c) 2025 Sean McLeish et al.)' \
	  --provenance 'compute=C = 6 N D with N = params_active_precise, D = tokens' \
	  --provenance 'throughput=FLOP/s per node: C / (step x seconds_per_step x num_nodes), model FLOPs (6 N D) of the runs, assuming linear scaling across the nodes each run used' \
	  -o laws/presets/gemstones-lm.json

# The built-in vit-patch-fmnist preset: the laws (and measured FLOP/s) that the CPU confirmation
# loop committed in $(VIT_LOOP) fitted, renamed, with that loop's target as default_target.
VIT_LOOP := docs/examples/validate-vit-patch/merge-6e12-2seeds
.PHONY: preset-vit
preset-vit: $(STAMP)
	$(PY) -c "import json; laws = json.load(open('$(VIT_LOOP)/laws.json')); \
	  laws.update(name='vit-patch-fmnist', \
	              default_target=json.load(open('$(VIT_LOOP)/plan.json'))['target_loss']); \
	  laws['provenance']['report'] = '$(VIT_LOOP)/report.md'; \
	  open('laws/presets/vit-patch-fmnist.json', 'w').write(json.dumps(laws, indent=2) + '\n')"
