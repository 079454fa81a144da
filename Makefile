# nascore — the README's commands. `make test` and `make book` create .venv if missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
NB ?= 01_model_zoo
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
export PYTHONHASHSEED := 0

.PHONY: venv test test-unit test-notebooks test-learned-avx2 test-portable book chapter chapters html bench clean-book

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[book,test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed

## Unit tests + every notebook end to end at the smoke profile + strict HTML build, then every
## page of that build in headless Chromium (tests/test_browser.py; skipped, with the reason
## shown, where Debian's chromium + chromium-driver are not installed).
test: venv
	NASCORE_PROFILE=smoke $(PY) -m pytest -q -p no:cacheprovider tests notebooks --nbval-lax \
	  --ignore=tests/test_browser.py $(PYTEST_ARGS)
	$(MAKE) html
	$(PY) -m pytest -q -p no:cacheprovider tests/test_browser.py $(PYTEST_ARGS)

## The learned-outcome tests (pytest -m learned) once more under the instruction-set caps of an
## AVX2-only CPU (ATen and oneDNN); .ci/run runs it after `make test` (about a minute and a half).
test-learned-avx2: venv
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 NASCORE_PROFILE=smoke $(PY) -m pytest -q -p no:cacheprovider \
	  -m learned tests $(PYTEST_ARGS)

## Every learned-outcome test under each ISA cap (uncapped, ATen AVX2, oneDNN AVX2, AVX-512 without AMX) and
## three training seeds: the measured minimum against each threshold (results/portable/summary.md).
test-portable: venv
	$(PY) benchmarks/learned_outcomes.py

## The main job: run every chapter at PROFILE with papermill into book/, then build the HTML.
book: venv chapters html

chapters: venv
	@for nb in $(NOTEBOOKS); do \
	  $(PY) -m nascore.book run $$(basename $$nb .ipynb) --profile $(PROFILE) || exit 1; \
	done
	$(PY) -m nascore.book status

## Re-run one chapter: make chapter NB=01_model_zoo PROFILE=quick
chapter: venv
	$(PY) -m nascore.book run $(NB) --profile $(PROFILE)
	$(PY) -m nascore.book status

## Build the HTML from the executed notebooks in book/ (no compute), warnings are errors.
html: venv
	rm -rf _build/html
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --builder html

bench: venv
	$(PY) benchmarks/bench_training.py

clean-book:
	rm -rf _build
