# Everything runs in a local .venv with the tested versions pinned in constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: install install-browser train test test-fast test-mmpretrain lint tensorboard clean model-configs

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -c constraints.txt -e ".[dev,export,search,sweeps,explain,serve,streaming,index,hf,s3,track]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv with pinned versions

install-browser:  ## Chromium + chromedriver (the report.html test) and a CJK font (class names in figures), from the system's packages; needs root
	command -v chromium >/dev/null && command -v chromedriver >/dev/null && test -d /usr/share/fonts/truetype/wqy || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei && apt-get clean; }

train: $(STAMP)  ## default run: lenet on the embedded digits set (make train ARGS="model=resnet18")
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## the whole suite (CI runs this), two workers: many tests wait on single-threaded imports
	$(PY) -m compileall -q src  # bytecode once: with PYTHONDONTWRITEBYTECODE set, each test process recompiled it
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=10 $(ARGS)

model-configs: $(STAMP)  ## conf/model/NAME.yaml for every torchvision classifier (after a torchvision upgrade)
	$(PY) tools/model_configs.py

test-fast: $(STAMP)  ## skip the @pytest.mark.slow runs
	$(PY) -m pytest -q -m "not slow" $(ARGS)

MM := .mmpretrain
test-mmpretrain: $(STAMP)  ## real mmpretrain checkpoints load with the same logits (mmpretrain kept out of .venv)
	$(PY) -m pip install --quiet --target $(MM) --no-deps -c constraints-mmpretrain.txt -r constraints-mmpretrain.txt
	PYTHONPATH=$(MM) $(PY) -W ignore -c "import mmpretrain.models"  # fails loudly where the test would skip
	PYTHONPATH=$(MM) $(PY) -m pytest -q tests/models/test_pretrained.py -k real_mmpretrain -W ignore::UserWarning

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

tensorboard: $(STAMP)  ## curves of every run under outputs/
	$(VENV)/bin/tensorboard --logdir outputs

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
